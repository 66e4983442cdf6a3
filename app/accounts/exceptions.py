"""What can go wrong with accounts, cohorts, invites and sessions, in words for the member."""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l

from app.errors import Conflict, DomainError, Forbidden, InvalidInput, NotFound


class InviteNotUsable(DomainError):
    """The invite is unknown, expired, used up or revoked."""

    status, code = 400, "invite_not_usable"
    default_message = _l(
        "That invite code does not work. Please check it, or ask your coach for a new one.")


class InviteExpired(InviteNotUsable):
    code = "invite_expired"
    default_message = _l("That invite has expired. Please ask your coach for a new one.")


class InviteUsedUp(InviteNotUsable):
    code = "invite_used_up"
    default_message = _l("That invite has been used as often as it allows. "
                         "Please ask your coach for a new one.")


class DisplayNameTaken(Conflict):
    code = "display_name_taken"
    default_message = _l("Someone already uses that name. Please pick another one.")

    def __init__(self, message: Any = None) -> None:
        super().__init__(message, field="display_name")


class InvalidCredentials(DomainError):
    status, code = 401, "invalid_credentials"
    default_message = _l("That name and password do not match. Please try again.")


class ResetLinkNotUsable(DomainError):
    status, code = 400, "reset_link_not_usable"
    default_message = _l("This link has already been used or has expired. "
                         "Please ask your coach for a new one.")


class ConsentIsForMembers(Forbidden):
    """Coaches and admins have no steps or sleep to share; consent belongs to members."""

    code = "consent_is_for_members"
    default_message = _l("Only members choose what they share. A coach or admin account has "
                         "nothing to share here.")


class LastCoach(Conflict):
    """A cohort always keeps at least one coach."""

    code = "last_coach"
    default_message = _l("A group needs at least one coach. Please add another coach first.")


class PasswordNotAccepted(DomainError):
    """The password given to confirm something important did not match."""

    status, code = 403, "password_not_accepted"
    default_message = _l("That password is not right, so nothing has changed. Please try again.")

    def __init__(self, message: Any = None, *, field: str = "password") -> None:
        super().__init__(message, field=field)


class CohortNeedsCoach(Conflict):
    """A coach cannot delete their account while a group would be left with no coach."""

    code = "cohort_needs_coach"
    default_message = _l("A group you coach has no other coach. Please add another coach to it "
                         "first, then delete your account.")


class LastAdmin(Conflict):
    code = "last_admin"
    default_message = _l("You are the only admin, so your account cannot be deleted yet. Please "
                         "create another admin account first (flask accounts create-admin).")


class TwoFactorRequired(DomainError):
    """Password accepted; a coach or admin still has to pass the second factor on this device."""

    status, code = 401, "two_factor_required"
    default_message = _l("One more step: please enter the code from your authenticator app to "
                         "finish signing in.")


class CodeNotAccepted(DomainError):
    status, code = 400, "code_not_accepted"
    default_message = _l("That code did not work. Codes change every 30 seconds, so please try "
                         "the newest one from your authenticator app.")

    def __init__(self, message: Any = None) -> None:
        super().__init__(message, field="code")


class CodeAlreadyUsed(CodeNotAccepted):
    code = "code_already_used"
    default_message = _l("That code has just been used. Please wait for the next one in your "
                         "authenticator app, then try again.")


class RecoveryCodeNotAccepted(CodeNotAccepted):
    code = "recovery_code_not_accepted"
    default_message = _l("That recovery code did not work. Each one works once. Please check it, "
                         "or try another one from your list.")


class TwoFactorAlreadySetUp(Conflict):
    code = "two_factor_already_set_up"
    default_message = _l("Your authenticator app is already set up. If you have lost it, an "
                         "admin can reset it for you.")


class TwoFactorNotSetUp(DomainError):
    status, code = 409, "two_factor_not_set_up"
    default_message = _l("Please set up your authenticator app first.")


__all__ = ["Conflict", "ConsentIsForMembers", "DisplayNameTaken", "Forbidden", "InvalidCredentials",
           "InvalidInput", "InviteExpired", "InviteNotUsable", "InviteUsedUp", "LastCoach",
           "NotFound", "ResetLinkNotUsable"]
