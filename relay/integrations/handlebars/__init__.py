"""Handlebars and Mustache templates for integration request bodies: a strict, bounded subset.

LaunchDarkly's integration framework writes request bodies, URLs and headers in Handlebars
(Handlebars.js 4.7 with the helpers of its helpers/index.js); Unleash's webhook addon
renders its `bodyTemplate` with mustache.js 4.2. `compile_template` parses either once;
`Template.render` then renders a context of JSON-like values (dict, list, str, int, float,
bool, None) exactly as those libraries do, for the subset such templates use.

Why not a template library: pybars compiles a template to Python source and runs it, so a
render can be bounded neither in steps nor in output, and no Python library escapes as
Handlebars 4 does (`'` as `&#x27;`, `` ` `` and `=` too) or renders values as JavaScript
does. Here a template becomes a small tree of closures; a render counts its steps (node
visits and loop iterations) and output characters and stops with RenderError past either
bound, and compile refuses what it does not implement (partials, decorators, raw blocks,
hash arguments, helpers other than LaunchDarkly's and the built-ins) with TemplateError
instead of guessing.

Handlebars mode: `{{path}}` (HTML-escaped), `{{{path}}}`, `{{& path}}`; paths `a.b`, `a/b`,
`this`, `.`, `../x`, `@root`, `@index`, `@key`, `@first`, `@last`, `[seg ment]`, `list.[0]`;
blocks `#if`, `#unless`, `#each` (block params `as |item key|`), `#with`, `{{else}}`,
`{{^}}`, `{{else if ...}}` chains; sections on any other name (Handlebars'
blockHelperMissing); helpers `lookup`, `equal`, `equalWithElse`, `pathEncode`,
`queryEncode`, `basicAuthHeaderValue`, `formatWithOffset` (its `simple` format in UTC);
comments, `~` whitespace control, standalone lines, `\\{{`. A missing value renders "".
Relay's one extension: `(equal a b)` as a subexpression is the boolean `a === b`
(Handlebars.js fails on it: LaunchDarkly's helper calls `options.fn`).

Mustache mode follows mustache.js: its escaping (`/` too, `'` as `&#39;`), sections that
iterate lists and push other truthy values, inverted sections, dotted names looked up
through the context stack, comments, standalone lines; no helpers, partials or `{{= =}}`.

Known departures, all refused or rare: JavaScript prototype members (`toString`,
`constructor`, ...) are never found; a context changes `../` depth unless it is the same
container or an equal scalar; `formatWithOffset` raises RenderError where JavaScript would
produce NaN or an invalid date.
"""

from relay.integrations.handlebars.errors import RenderError, TemplateError
from relay.integrations.handlebars.template import Template, compile_template

__all__ = ["RenderError", "Template", "TemplateError", "compile_template"]

# the public names report this package as their home, as before the split (reprs, pickles)
for _public in (RenderError, Template, TemplateError, compile_template):
    _public.__module__ = __name__
del _public
