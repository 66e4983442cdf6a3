"""Hearten: the application factory, the one place where the features are put together."""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask_babel import lazy_gettext as _l
from werkzeug.middleware.proxy_fix import ProxyFix

from app import api, cli, db, errors, i18n, jobs, logs, metrics, realtime, security, shell, urls
from app.accounts import auth, data_rights, two_factor_routes
from app.accounts import handlers as account_handlers
from app.accounts import routes as account_routes
from app.accounts import tasks as account_tasks  # noqa: F401  (registers the periodic task)
from app.config import ROOT, load_config
from app.demo import add_demo_seeder
from app.extensions import compress, csrf, limiter
from coach import data_rights as coach_rights
from coach import demo as coach_demo
from coach import handlers as coach_handlers
from coach import routes as coach_routes
from coach import tasks as coach_tasks  # noqa: F401  (registers the nightly rebuild)
from coach.cli import coach_cli
from feed import data_rights as feed_rights
from feed import demo as feed_demo
from feed import handlers as feed_handlers
from feed import routes as feed_routes
from feed.safety import handlers as safety_handlers
from feed.safety import routes as safety_routes
from feed.safety import rules as safety_rules
from feed.texts import linkify
from goals import data_rights as goal_rights
from goals import handlers as goal_handlers
from goals import routes as goal_routes
from goals import tasks as goal_tasks  # noqa: F401  (registers the periodic task)
from goals.cli import goals_cli
from notify import bootstrap as notify_bootstrap
from notify import data_rights as notify_rights
from notify import handlers as notify_handlers
from notify import routes as notify_routes
from notify import tasks as notify_tasks  # noqa: F401  (registers the periodic tasks)
from wearables import bootstrap as wearables_bootstrap
from wearables import data_rights as wearable_rights
from wearables import handlers as wearable_handlers
from wearables import routes as wearable_routes


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Build the app from the environment, overlaid with `test_config`."""
    app = Flask(__name__, static_folder=str(ROOT / "static"), static_url_path="/static")
    app.url_map.converters["int"] = urls.IdConverter  # before any route: ids a database can hold
    app.config.from_mapping(load_config(test_config))
    if app.config["TRUST_PROXY_HOPS"]:
        hops = app.config["TRUST_PROXY_HOPS"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)  # type: ignore[method-assign]

    compress.init_app(app)  # first, so that it runs after every other after_request hook
    # Next: the request id and the timer start before any other hook can answer the request.
    logs.init_app(app)
    metrics.init_app(app)
    db.init_app(app)
    errors.init_app(app)
    csrf.init_app(app)
    limiter.init_app(app)
    auth.init_app(app)  # before i18n, so that the member's language is known
    i18n.init_app(app)
    security.init_app(app)
    jobs.init_app(app)
    realtime.init_app(app)
    api.init_app(app)
    shell.init_app(app)
    cli.init_app(app)
    wearables_bootstrap.init_app(app)

    app.register_blueprint(shell.bp)
    app.register_blueprint(account_routes.bp)
    app.register_blueprint(account_routes.api)
    app.register_blueprint(two_factor_routes.bp)
    app.register_blueprint(two_factor_routes.api)
    app.register_blueprint(wearable_routes.bp)
    app.register_blueprint(wearable_routes.api)
    app.register_blueprint(goal_routes.bp)
    app.register_blueprint(goal_routes.api)
    shell.add_home_section(app, goal_routes.home_section)
    app.cli.add_command(goals_cli)
    app.cli.add_command(coach_cli)
    app.register_blueprint(feed_routes.bp)
    app.register_blueprint(feed_routes.api)
    app.add_template_filter(linkify, "linkify")
    goal_routes.add_goal_section(app, feed_routes.goal_section)
    app.register_blueprint(safety_routes.bp)
    app.register_blueprint(safety_routes.api)
    safety_routes.init_app(app)
    goal_routes.add_reach_check(app, safety_rules.not_blocked)
    app.register_blueprint(notify_routes.bp)
    app.register_blueprint(notify_routes.api)
    app.register_blueprint(coach_routes.bp)
    app.register_blueprint(coach_routes.api)
    app.register_blueprint(coach_routes.admin)
    app.register_blueprint(coach_routes.admin_api)
    shell.add_cohort_link(app, "coach.overview_page", _l("Overview"))
    shell.add_cohort_link(app, "coach.check_ins_page", _l("Check-in list"))
    shell.add_cohort_link(app, "coach.export_page", _l("Exports for evaluation"))
    shell.add_admin_link(app, "admin.audit_page", _l("The audit log: who looked at or changed what"))
    notify_routes.init_app(app)
    notify_bootstrap.init_app(app)
    for part in (wearable_rights, goal_rights, feed_rights, notify_rights, coach_rights):
        data_rights.add_export_part(app, part.export_part)  # a member's download, feature by feature
    add_demo_seeder(app, feed_demo.seed)
    add_demo_seeder(app, coach_demo.seed)

    bus = db.get_db(app).bus
    account_handlers.register(bus)
    wearable_handlers.register(bus)
    goal_handlers.register(bus)
    feed_handlers.register(bus)
    safety_handlers.register(bus)
    notify_handlers.register(bus)
    coach_handlers.register(bus)
    return app
