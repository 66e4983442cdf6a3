"""Who may reach each endpoint: the whole authorization policy in one table, for reviewers.

This module enforces nothing. The checks live where they always have: `auth.login_required` and
`auth.roles_required` in front of views, the API's `auth=True`, and the services' object rules
(`goals.services.can_see`, `feed.services.visible_clause`, `get_cohort_for_coach`, ...).
`tests/app/test_authorization.py` holds the table to the app: it fails when an endpoint has no
entry here, and calls every route as each kind of caller to show the audiences and object rules
below are the ones the code keeps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# Who may call at all (the object rule then narrows it down):
#   anonymous    anyone, signed in or not; a route that acts on something asks for its own
#                secret (invite code, reset token, webhook signature, scrape token)
#   second_step  someone who gave a password: a coach or admin still owing their code (and
#                anyone already signed in); nobody else
#   signed_in    any signed-in account, members and staff (staff only after the second factor)
#   member       members (coaches get 403); `roles_required` lets admins through too, where
#                they find only their own, empty, records
#   staff        coaches and admins, after the second factor (members get 403)
#   admin        admins only
Audience = Literal["anonymous", "second_step", "signed_in", "member", "staff", "admin"]

# Which object the caller may touch, when the route is about one:
#   none              about no stored object (or only public ones)
#   self              only the caller's own records; the route takes no one else's id
#   own               an id in the path or body that must be the caller's own: 404 otherwise
#   goal_visibility   goals.services.can_see, and no block either way (404 otherwise)
#   feed_visibility   feed.services.visible_clause: a seat in the item's cohort, held items only
#                     to their author, no block or mute, goal posts only while shared (404)
#   cohort_seat       a seat (member, coach or moderator) in the cohort (404 otherwise)
#   coach_seat        a coach seat in that cohort; admins only when seated (403/404)
#   fellow_member     another member who shares a cohort with the caller (404 otherwise)
#   cohort_coach      a coach of the cohort, admins of every cohort: get_cohort_for_coach (404)
#   cohort_moderator  a coach or moderator seat in the cohort; admins only when seated (403/404)
#   secret            a secret in the request: invite code, reset token, signature, token
Rule = Literal["none", "self", "own", "goal_visibility", "feed_visibility", "cohort_seat",
               "coach_seat", "fellow_member", "cohort_coach", "cohort_moderator", "secret"]

AUDIENCES: tuple[Audience, ...] = ("anonymous", "second_step", "signed_in", "member", "staff",
                                   "admin")


@dataclass(frozen=True)
class Access:
    """Who may reach an endpoint, which object rule applies, and why, in one line."""

    audience: Audience
    rule: Rule
    reason: str


ACCESS: dict[str, Access] = {
    # --- the shell: public files, health, the PWA, device settings ---
    "static": Access("anonymous", "none", "Fingerprinted scripts, styles and icons, the same for all."),
    "shell.index": Access("anonymous", "none", "The welcome page; signed-in users go to their home."),
    "shell.offline": Access("anonymous", "none", "The offline page the service worker keeps."),
    "shell.manifest": Access("anonymous", "none", "The web app manifest."),
    "shell.service_worker": Access("anonymous", "none", "The service worker script."),
    "shell.healthz": Access("anonymous", "none", "Liveness for the load balancer; no one's data."),
    "shell.readyz": Access("anonymous", "none", "Readiness (database, queue); no one's data."),
    "shell.set_language": Access("anonymous", "self", "This device's language (and the caller's)."),
    "shell.set_data_saver": Access("anonymous", "self", "Data saver, kept in this device's cookie."),
    "shell.member_home": Access("signed_in", "self", "The caller's own home (staff go to /coach)."),
    "metrics": Access("anonymous", "secret", "Prometheus: METRICS_TOKEN, else loopback; 404 to others."),
    "openapi_json": Access("anonymous", "none", "The API's description; no data."),
    # --- accounts: joining, signing in, sessions, sharing ---
    "accounts.login": Access("anonymous", "none", "The sign-in form."),
    "accounts.logout": Access("anonymous", "self", "Ends this device's own session, if it has one."),
    "accounts.join_start": Access("anonymous", "none", "Asks for an invite code."),
    "accounts.join_form": Access("anonymous", "secret", "The join form for a usable invite code."),
    "accounts.join_submit": Access("anonymous", "secret", "Joins the invite code's cohort only."),
    "accounts.reset": Access("anonymous", "secret", "Sets the password of the reset token's owner."),
    "accounts.sessions_page": Access("signed_in", "self", "The caller's own signed-in devices."),
    "accounts.end_session_page": Access("signed_in", "own", "Ends one of the caller's own devices."),
    "accounts.end_other_sessions": Access("signed_in", "self", "Ends the caller's other devices."),
    "accounts.sharing_page": Access("member", "self", "What the member shares (staff: 403)."),
    "accounts.save_sharing_page": Access("member", "self", "The member's own consent (staff: 403)."),
    "accounts.save_research_page": Access("member", "self", "The member's research consent."),
    "accounts.export_page": Access("signed_in", "self", "A zip of the caller's own data; audited."),
    "accounts.password_page": Access("signed_in", "self",
                                     "Changes the caller's own password, after the current one."),
    "accounts.delete_account_page": Access("signed_in", "self",
                                       "Deletes the caller's own account, after their password."),
    "accounts.goodbye": Access("anonymous", "none", "Said to a device after its account is deleted."),
    "accounts_api.csrf_token": Access("anonymous", "none", "A CSRF token for this device's session."),
    "accounts_api.api_join": Access("anonymous", "secret", "Joins the invite code's cohort only."),
    "accounts_api.api_login": Access("anonymous", "none", "Signs in with a name and password."),
    "accounts_api.api_logout": Access("second_step", "self", "Ends this device's own session."),
    "accounts_api.api_me": Access("signed_in", "self", "The caller's own account."),
    "accounts_api.api_export": Access("signed_in", "self", "A zip of the caller's own data; audited."),
    "accounts_api.api_delete_me": Access("signed_in", "self",
                                     "Deletes the caller's own account, after their password."),
    "accounts_api.api_sessions": Access("signed_in", "self", "The caller's own signed-in devices."),
    "accounts_api.api_end_session": Access("signed_in", "own", "Ends one of the caller's devices."),
    "accounts_api.api_cohorts": Access("signed_in", "self", "Cohorts the caller is in or coaches."),
    "accounts_api.api_sharing": Access("member", "self", "What the member shares (staff: 403)."),
    "accounts_api.api_update_sharing": Access("member", "self", "The member's own consent."),
    # --- accounts: running cohorts (coaches; admins everywhere) ---
    "accounts.coach_home": Access("staff", "self", "The cohorts the caller coaches (admins: all)."),
    "accounts.create_cohort_page": Access("staff", "none", "A new cohort, coached by the caller."),
    "accounts.create_invite_page": Access("staff", "cohort_coach", "Invites into a cohort one runs."),
    "accounts.revoke_invite_page": Access("staff", "cohort_coach", "Only invites of one's cohorts."),
    "accounts.reset_link_page": Access("staff", "cohort_coach",
                                   "Reset links for members of one's cohorts (admins: anyone)."),
    "accounts.confirm_remove_member_page": Access("staff", "cohort_coach", "A member of one's cohort."),
    "accounts.remove_member_page": Access("staff", "cohort_coach", "A member of one's own cohort."),
    "accounts.add_coach_page": Access("staff", "cohort_coach", "Co-coaches for a cohort one runs."),
    "accounts.confirm_remove_coach_page": Access("staff", "cohort_coach", "A coach of one's cohort."),
    "accounts.remove_coach_page": Access("staff", "cohort_coach", "A coach of one's own cohort."),
    "accounts.add_moderator_page": Access("staff", "cohort_coach", "Moderators for one's cohort."),
    "accounts.remove_moderator_page": Access("staff", "cohort_coach", "A moderator of one's cohort."),
    "accounts_api.api_create_cohort": Access("staff", "none", "A new cohort, coached by the caller."),
    "accounts_api.api_cohort_members": Access("staff", "cohort_coach", "Members of a cohort one runs."),
    "accounts_api.api_cohort_staff": Access("staff", "cohort_coach", "Staff of a cohort one runs."),
    "accounts_api.api_invites": Access("staff", "cohort_coach", "Invites of a cohort one runs."),
    "accounts_api.api_create_invite": Access("staff", "cohort_coach", "Invites into one's cohort."),
    "accounts_api.api_revoke_invite": Access("staff", "cohort_coach", "Only invites of one's cohorts."),
    "accounts_api.api_reset_link": Access("staff", "cohort_coach",
                                      "Reset links for members of one's cohorts (admins: anyone)."),
    "accounts_api.api_remove_member": Access("staff", "cohort_coach", "A member of one's cohort."),
    "accounts_api.api_add_coach": Access("staff", "cohort_coach", "Co-coaches for one's cohort."),
    "accounts_api.api_remove_coach": Access("staff", "cohort_coach", "A coach of one's cohort."),
    "accounts_api.api_add_moderator": Access("staff", "cohort_coach", "Moderators for one's cohort."),
    "accounts_api.api_remove_moderator": Access("staff", "cohort_coach", "A moderator of one's cohort."),
    # --- the second factor (coaches and admins) ---
    "two_factor.verify": Access("second_step", "self", "The code step of the caller's own sign-in."),
    "two_factor.recovery": Access("second_step", "self", "The same step with a recovery code."),
    "two_factor.setup": Access("second_step", "self", "Sets up the caller's authenticator (staff)."),
    "two_factor.settings": Access("staff", "self", "The caller's own two-step sign-in."),
    "two_factor.renew_recovery_codes": Access("staff", "self", "New recovery codes, after a code."),
    "two_factor_api.api_verify": Access("second_step", "self", "The code step of the caller's sign-in."),
    "two_factor_api.api_recovery": Access("second_step", "self", "The same step, recovery code."),
    "two_factor_api.api_setup": Access("second_step", "self", "Starts the caller's authenticator."),
    "two_factor_api.api_confirm_setup": Access("second_step", "self", "Confirms it with a code."),
    "two_factor_api.api_status": Access("staff", "self", "The caller's own two-step sign-in."),
    "two_factor_api.api_renew_recovery_codes": Access("staff", "self", "New codes, after a code."),
    # --- wearables: the member's own numbers and trackers ---
    "wearables.tracker": Access("member", "self", "The caller's own numbers and connections."),
    "wearables.enter_steps_page": Access("member", "self", "Typed-in steps, for the caller only."),
    "wearables.enter_sleep_page": Access("member", "self", "Typed-in sleep, for the caller only."),
    "wearables.connect_start": Access("member", "self", "Starts connecting the caller's tracker."),
    "wearables.oauth_callback": Access("member", "self",
                                   "Finishes it; the state must match this device's cookie."),
    "wearables.disconnect": Access("member", "self", "The caller's own connection, by platform."),
    "wearables.import_file": Access("member", "self", "An export file, for the caller only."),
    "wearables.google_webhook": Access("anonymous", "secret", "Google's notices: verified signature."),
    "wearables.fitbit_webhook_verify": Access("anonymous", "secret",
                                          "Fitbit's subscriber check: the verification code."),
    "wearables.fitbit_webhook": Access("anonymous", "secret", "Fitbit's notices: HMAC signature."),
    "wearables_api.api_metrics": Access("member", "self", "The caller's own steps and sleep."),
    "wearables_api.api_enter_steps": Access("member", "self", "Typed-in steps, for the caller only."),
    "wearables_api.api_enter_sleep": Access("member", "self", "Typed-in sleep, for the caller only."),
    # --- goals ---
    "goals.goal_list": Access("member", "self", "The caller's own goals."),
    "goals.choose_kind": Access("member", "self", "Kinds of goal, and suggestions to the caller."),
    "goals.new_goal_form": Access("member", "self", "A goal form; a suggestion only of one's cohort."),
    "goals.create_goal_page": Access("member", "self", "A goal for the caller."),
    "goals.goal_page": Access("signed_in", "goal_visibility", "Owner; coach or group as shared."),
    "goals.edit_goal": Access("member", "own", "Only the owner changes a goal."),
    "goals.pause_goal": Access("member", "own", "Only the owner pauses a goal."),
    "goals.resume_goal": Access("member", "own", "Only the owner resumes a goal."),
    "goals.archive_goal": Access("member", "own", "Only the owner archives a goal."),
    "goals.check_in_page": Access("member", "own", "Only the owner checks in."),
    "goals.shared_goals": Access("signed_in", "goal_visibility", "Goals a member shared with me."),
    "goals.suggestions": Access("staff", "self", "Suggestions to the cohorts the caller coaches."),
    "goals.create_suggestion": Access("staff", "cohort_coach", "A suggestion to one's own cohort."),
    "goals.archive_suggestion": Access("staff", "cohort_coach", "A suggestion of one's own cohort."),
    "goals_api.api_goals": Access("member", "self", "The caller's own goals."),
    "goals_api.api_create_goal": Access("member", "self", "A goal for the caller."),
    "goals_api.api_goal": Access("signed_in", "goal_visibility", "Owner; coach or group as shared."),
    "goals_api.api_goal_history": Access("signed_in", "goal_visibility", "Same rule as the goal."),
    "goals_api.api_goal_milestones": Access("signed_in", "goal_visibility", "Same rule as the goal."),
    "goals_api.api_shared_goals": Access("signed_in", "goal_visibility", "Goals shared with me."),
    "goals_api.api_change_goal": Access("member", "own", "Only the owner changes a goal."),
    "goals_api.api_pause_goal": Access("member", "own", "Only the owner pauses a goal."),
    "goals_api.api_resume_goal": Access("member", "own", "Only the owner resumes a goal."),
    "goals_api.api_archive_goal": Access("member", "own", "Only the owner archives a goal."),
    "goals_api.api_check_in": Access("member", "own", "Only the owner checks in."),
    "goals_api.api_templates": Access("signed_in", "self", "Suggestions to me, or made by me."),
    "goals_api.api_create_template": Access("staff", "cohort_coach", "A suggestion to one's cohort."),
    # --- the feed ---
    "feed.feed_page": Access("signed_in", "feed_visibility", "A cohort's feed, for its seats only."),
    "feed.feed_changes": Access("signed_in", "feed_visibility", "Live catch-up, same rule."),
    "feed.item_page": Access("signed_in", "feed_visibility", "One item and its comments."),
    "feed.post_page": Access("signed_in", "cohort_seat", "Posts into a cohort one sits in."),
    "feed.cheer_page": Access("signed_in", "feed_visibility", "Cheers an item one can see."),
    "feed.comment_page": Access("signed_in", "feed_visibility", "Comments on an item one can see."),
    "feed.remove_page": Access("signed_in", "own", "Only the author takes a post down."),
    "feed.pin_page": Access("staff", "coach_seat", "The cohort's coaches pin tips."),
    "feed.settings_page": Access("member", "self", "The caller's own 'just reading' choice."),
    "feed.share_progress_page": Access("member", "own", "The owner shares a shared goal's day."),
    "feed_api.api_feed": Access("signed_in", "feed_visibility", "A cohort's feed, for its seats."),
    "feed_api.api_post": Access("signed_in", "cohort_seat", "Posts into a cohort one sits in."),
    "feed_api.api_item": Access("signed_in", "feed_visibility", "One item one can see."),
    "feed_api.api_remove": Access("signed_in", "own", "Only the author takes a post down."),
    "feed_api.api_cheer": Access("signed_in", "feed_visibility", "Cheers an item one can see."),
    "feed_api.api_undo_cheer": Access("signed_in", "feed_visibility", "Takes one's own cheer back."),
    "feed_api.api_comments": Access("signed_in", "feed_visibility", "Comments of an item one sees."),
    "feed_api.api_comment": Access("signed_in", "feed_visibility", "Comments on an item one sees."),
    "feed_api.api_tips": Access("signed_in", "feed_visibility", "Tips of a cohort one sits in."),
    "feed_api.api_pin": Access("staff", "coach_seat", "The cohort's coaches pin tips."),
    "feed_api.api_settings": Access("member", "self", "The caller's own 'just reading' choice."),
    "feed_api.api_share_progress": Access("member", "own", "The owner shares a shared goal's day."),
    # --- safety: reports, blocks, moderation ---
    "safety.report_page": Access("signed_in", "feed_visibility", "Reports what one can see."),
    "safety.block_page": Access("member", "fellow_member", "Blocks a member of one's cohort."),
    "safety.unblock_page": Access("member", "self", "Removes one's own block."),
    "safety.mute_page": Access("member", "fellow_member", "Mutes a member of one's cohort."),
    "safety.unmute_page": Access("member", "self", "Removes one's own mute."),
    "safety.people_page": Access("member", "self", "One's blocks, mutes and moderation notices."),
    "safety.appeal_page": Access("member", "own", "Appeals an action about oneself, once."),
    "safety.queue_page": Access("staff", "cohort_moderator", "Held and reported items of one's cohorts."),
    "safety.act_page": Access("staff", "cohort_moderator", "Acts on items of cohorts one moderates."),
    "safety.decide_page": Access("staff", "cohort_moderator", "Answers appeals in those cohorts."),
    "safety_api.api_screen": Access("signed_in", "none", "Screens the caller's own draft text."),
    "safety_api.api_report": Access("signed_in", "feed_visibility", "Reports what one can see."),
    "safety_api.api_block": Access("member", "fellow_member", "Blocks a member of one's cohort."),
    "safety_api.api_unblock": Access("member", "self", "Removes one's own block."),
    "safety_api.api_mute": Access("member", "fellow_member", "Mutes a member of one's cohort."),
    "safety_api.api_unmute": Access("member", "self", "Removes one's own mute."),
    "safety_api.api_appeal": Access("member", "own", "Appeals an action about oneself, once."),
    "safety_api.api_queue": Access("staff", "cohort_moderator", "Held and reported items (one's)."),
    "safety_api.api_act": Access("signed_in", "cohort_moderator",
                             "Any account may ask; the service refuses non-moderators (403)."),
    "safety_api.api_decide": Access("signed_in", "cohort_moderator",
                                "Any account may ask; the service refuses non-moderators (403)."),
    # --- notifications ---
    "notify.inbox_page": Access("signed_in", "self", "The caller's own inbox."),
    "notify.settings_page": Access("signed_in", "self", "The caller's own choices and devices."),
    "notify.save_settings_page": Access("signed_in", "self", "The caller's own choices."),
    "notify.remove_device_page": Access("signed_in", "own", "One of the caller's own devices."),
    "notify.message_page": Access("staff", "self", "The message form, for one's own cohorts."),
    "notify.send_message_page": Access("staff", "coach_seat", "A message to a cohort one coaches."),
    "notify_api.api_inbox": Access("signed_in", "self", "The caller's own inbox."),
    "notify_api.api_mark_read": Access("signed_in", "self", "Marks the caller's own as read."),
    "notify_api.api_preferences": Access("signed_in", "self", "The caller's own choices."),
    "notify_api.api_change_preferences": Access("signed_in", "self", "The caller's own choices."),
    "notify_api.api_public_key": Access("signed_in", "none", "The VAPID public key."),
    "notify_api.api_subscribe": Access("signed_in", "self",
                                   "This device's subscription, for the caller (the endpoint is "
                                   "the device's secret)."),
    "notify_api.api_unsubscribe": Access("signed_in", "own", "One of the caller's own devices."),
    "notify_api.api_unsubscribe_endpoint": Access("signed_in", "own", "The caller's device, by URL."),
    "notify_api.api_message": Access("staff", "coach_seat", "A message to a cohort one coaches."),
    "notify_api.api_push_status": Access("staff", "cohort_coach", "Push set-up of one's members."),
    # --- the coach's views and exports; the audit log ---
    "coach.overview_page": Access("staff", "cohort_coach", "Figures of a cohort one runs."),
    "coach.check_ins_page": Access("staff", "cohort_coach", "The check-in list of one's cohort."),
    "coach.member_page": Access("staff", "cohort_coach",
                            "A member of that cohort, within their consent; audited."),
    "coach.export_page": Access("staff", "cohort_coach", "The export form of one's cohort."),
    "coach.export_csv": Access("staff", "cohort_coach", "De-identified, consenting only; audited."),
    "coach.export_json": Access("staff", "cohort_coach", "De-identified, consenting only; audited."),
    "coach_api.api_overview": Access("staff", "cohort_coach", "Figures of a cohort one runs."),
    "coach_api.api_check_ins": Access("staff", "cohort_coach", "The check-in list of one's cohort."),
    "coach_api.api_member": Access("staff", "cohort_coach",
                               "A member of that cohort, within their consent; audited."),
    "coach_api.api_export": Access("staff", "cohort_coach", "De-identified, consenting; audited."),
    "coach_api.api_export_dictionary": Access("staff", "none", "What an export's columns mean."),
    "admin.audit_page": Access("admin", "none", "The audit log: who looked at or changed what."),
    "admin_api.api_audit": Access("admin", "none", "The audit log, as JSON."),
}
