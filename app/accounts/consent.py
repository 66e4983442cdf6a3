"""What a member lets their coaches see of each metric, and their separate yes to research.

Private by default: a member without a consent row shares nothing, and nobody is in research until
they agree. Only members have consent; coaches and admins have nothing of their own to share.
"""

from __future__ import annotations

import secrets
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime

from flask_babel import lazy_gettext as _l
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select
from sqlmodel.sql.expression import SelectOfScalar

from app import audit
from app.accounts.events import ConsentChanged
from app.accounts.exceptions import ConsentIsForMembers, InvalidInput
from app.accounts.models import Consent, ConsentLevel, ConsentMetric, ResearchConsent, Role, User
from app.events import record

STUDY_ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"  # base32: 10 characters hold 50 random bits
_CHUNK = 500  # ids per IN (…) list, well under every database's limit
_METRICS = frozenset(metric.value for metric in ConsentMetric)
_LEVELS = frozenset(level.value for level in ConsentLevel)


@dataclass(frozen=True)
class Sharing:
    """A member's choices: a level per metric, and whether they currently help research."""

    levels: dict[ConsentMetric, ConsentLevel]
    research: bool


def _member_id(member: User) -> int:
    if member.role != Role.MEMBER:
        raise ConsentIsForMembers()
    if member.id is None:
        raise ValueError("the member has not been saved yet")
    return member.id


def check_metric(value: ConsentMetric | str) -> ConsentMetric:
    """The metric named by `value`, or a clear InvalidInput."""
    try:
        return ConsentMetric(value)
    except ValueError:
        raise InvalidInput(_l("You can choose what you share of your steps and of your sleep; "
                              "“%(name)s” is not one of them.", name=str(value)[:40]),
                           field=str(value)[:40]) from None


def check_level(metric: ConsentMetric, value: ConsentLevel | str) -> ConsentLevel:
    """The level named by `value`, or a clear InvalidInput on the metric's field."""
    try:
        return ConsentLevel(value)
    except ValueError:
        message = (_l("Please choose nothing, summary or detail for your steps.")
                   if metric == ConsentMetric.STEPS
                   else _l("Please choose nothing, summary or detail for your sleep."))
        raise InvalidInput(message, field=metric.value) from None


def _chunks(ids: Collection[int]) -> list[list[int]]:
    ordered = sorted(set(ids))
    return [ordered[i:i + _CHUNK] for i in range(0, len(ordered), _CHUNK)]


# --- levels per metric ---


def levels_of(session: Session, *, member_ids: Collection[int]
              ) -> dict[int, dict[ConsentMetric, ConsentLevel]]:
    """Every given member's level for every metric; NOTHING where they never chose."""
    levels = {member_id: dict.fromkeys(ConsentMetric, ConsentLevel.NOTHING)
              for member_id in member_ids}
    for chunk in _chunks(member_ids):
        rows = session.exec(select(Consent).where(col(Consent.member_id).in_(chunk)))
        for row in rows:
            if row.metric in _METRICS and row.level in _LEVELS:
                levels[row.member_id][ConsentMetric(row.metric)] = ConsentLevel(row.level)
    return levels


def level_of(session: Session, *, member_id: int, metric: ConsentMetric) -> ConsentLevel:
    """One member's level for one metric (NOTHING when they never chose)."""
    return levels_of(session, member_ids=[member_id])[member_id][check_metric(metric)]


def set_consent(session: Session, *, member: User, metric: ConsentMetric | str,
                level: ConsentLevel | str, now: datetime) -> ConsentLevel:
    """Set what the member's coaches may see of `metric`; a change is recorded and audited."""
    member_id = _member_id(member)
    chosen_metric = check_metric(metric)
    chosen = check_level(chosen_metric, level)
    query = select(Consent).where(col(Consent.member_id) == member_id,
                                  col(Consent.metric) == chosen_metric.value).with_for_update()
    row = session.exec(query).first()
    if row is None:
        if chosen == ConsentLevel.NOTHING:
            return chosen  # no row already means nothing
        row = _new_consent_row(session, query=query, member_id=member_id, metric=chosen_metric,
                               now=now)
    before = ConsentLevel(row.level) if row.level in _LEVELS else ConsentLevel.NOTHING
    if before == chosen:
        return chosen
    row.level, row.changed_at = chosen, now
    session.add(row)
    session.flush()
    record(session, ConsentChanged(member_id=member_id, metric=chosen_metric.value,
                                   before=before.value, after=chosen.value))
    audit.log(session, actor_id=member_id, action="consent.changed", subject_type="consent",
              subject_id=row.id, member_id=member_id,
              detail=f"{chosen_metric.value}: {before.value} → {chosen.value}", now=now)
    return chosen


def _new_consent_row(session: Session, *, query: SelectOfScalar[Consent], member_id: int,
                     metric: ConsentMetric, now: datetime) -> Consent:
    """A row at NOTHING for the member's `metric`, or the one another device just created."""
    row = Consent(member_id=member_id, metric=metric.value, level=ConsentLevel.NOTHING,
                  changed_at=now)
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError:  # the same member choosing on two devices at the same moment
        row = session.exec(query).one()
    return row


# --- research ---


def _new_study_id() -> str:
    return "S-" + "".join(secrets.choice(STUDY_ID_ALPHABET) for _ in range(10))


def agree_to_research(session: Session, *, member: User, now: datetime) -> ResearchConsent:
    """The member agrees to research use; an earlier study id is kept if they had one."""
    member_id = _member_id(member)
    row = session.get(ResearchConsent, member_id, with_for_update=True)
    if row is not None:
        if row.withdrawn_at is not None:
            row.agreed_at, row.withdrawn_at = now, None
            session.add(row)
            _audit_research(session, member_id=member_id, action="research.agreed", now=now)
        return row
    for _attempt in range(5):  # a study id clash is all but impossible; try again if it happens
        row = ResearchConsent(member_id=member_id, study_id=_new_study_id(), agreed_at=now)
        try:
            with session.begin_nested():
                session.add(row)
                session.flush()
        except IntegrityError:
            existing = session.get(ResearchConsent, member_id, populate_existing=True)
            if existing is not None:  # agreed on another device at the same moment
                return agree_to_research(session, member=member, now=now)
            continue
        _audit_research(session, member_id=member_id, action="research.agreed", now=now)
        return row
    raise RuntimeError("could not find an unused study id")


def withdraw_from_research(session: Session, *, member: User, now: datetime) -> None:
    """The member stops research use from now on; their study id stays reserved for them."""
    member_id = _member_id(member)
    row = session.get(ResearchConsent, member_id, with_for_update=True)
    if row is None or row.withdrawn_at is not None:
        return
    row.withdrawn_at = now
    session.add(row)
    _audit_research(session, member_id=member_id, action="research.withdrawn", now=now)


def _audit_research(session: Session, *, member_id: int, action: str, now: datetime) -> None:
    # The study id stays out of the log: it would tie the member to their de-identified data.
    audit.log(session, actor_id=member_id, action=action, subject_type="research",
              member_id=member_id, now=now)


def research_study_ids(session: Session, *, member_ids: Collection[int]) -> dict[int, str]:
    """The study ids of those of `member_ids` who currently agree to research."""
    found: dict[int, str] = {}
    for chunk in _chunks(member_ids):
        rows = session.exec(select(ResearchConsent.member_id, ResearchConsent.study_id).where(
            col(ResearchConsent.member_id).in_(chunk), col(ResearchConsent.withdrawn_at).is_(None)))
        found.update({member_id: study_id for member_id, study_id in rows})
    return found


def in_research(session: Session, *, member_id: int) -> bool:
    """True while the member agrees to research use."""
    return member_id in research_study_ids(session, member_ids=[member_id])


# --- the member's page and API: all choices at once ---


def sharing_of(session: Session, *, member: User) -> Sharing:
    """The member's current choices."""
    member_id = _member_id(member)
    return Sharing(levels=levels_of(session, member_ids=[member_id])[member_id],
                   research=in_research(session, member_id=member_id))


def update_sharing(session: Session, *, member: User, levels: Mapping[str, str],
                   research: bool | None, now: datetime) -> Sharing:
    """Apply the member's choices, all or nothing: every value is checked before any is saved."""
    _member_id(member)
    checked = {metric: check_level(metric, level)
               for metric, level in ((check_metric(name), value) for name, value in levels.items())}
    for metric, level in checked.items():
        set_consent(session, member=member, metric=metric, level=level, now=now)
    if research is True:
        agree_to_research(session, member=member, now=now)
    elif research is False:
        withdraw_from_research(session, member=member, now=now)
    return sharing_of(session, member=member)
