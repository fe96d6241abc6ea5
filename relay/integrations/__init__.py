"""Integrations in LaunchDarkly's integration-framework format: reading and checking a
manifest (`manifest`), the built-ins in `builtin/<key>/` and the operator's folder
(`catalog`), the Handlebars/Mustache renderer (`handlebars/`), what templates see of an
event (`context`), and a delivery's URL, headers and body rendered from them (`render`).
No Redis: subscriptions and workers call it with what they read."""
