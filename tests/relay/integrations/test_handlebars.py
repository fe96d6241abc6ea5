"""relay.integrations.handlebars renders as Handlebars.js 4.7.8 and mustache.js 4.2.0 do, bounded.

Every expected output in the tables below was produced by the real libraries (with
LaunchDarkly's helpers registered as its helpers/index.js does, TZ=UTC);
test_tables_match_node renders the tables with them again and fails on any difference.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from relay.integrations.handlebars import RenderError, TemplateError, compile_template
from tests.relay.integrations.conftest import render_with_node


@dataclass(frozen=True)
class Case:
    """A template, its context and the output the JavaScript library gives."""

    id: str
    template: str
    context: dict[str, Any]
    expected: str


# a LaunchDarkly audit-log event, as integration templates see it
EVENT = {
    "kind": "flag",
    "title": {"plainText": "Ann turned on \"new-checkout\" in 'Production'", "html": "<b>on</b>"},
    "member": {"email": "ann@example.com", "firstName": "Ann"},
    "project": {"key": "web", "environment": {"key": "production", "name": "Production"}},
    "timestamp": {"milliseconds": 1700000000123, "seconds": 1700000000},
    "tags": ["checkout", "team:payments"],
    "customProperties": {"datadog": {"name": "Datadog", "values": ["env:prod", "svc=web"]}},
    "details": None,
}

HANDLEBARS_CASES = [
    Case(
        "escape",
        "{{v}}",
        {"v": "a & b < c > d \" e ' f ` g = h / i"},
        "a &amp; b &lt; c &gt; d &quot; e &#x27; f &#x60; g &#x3D; h / i",
    ),
    Case("escape-none-needed", "{{v}}", {"v": "plain text"}, "plain text"),
    Case("raw-triple", "{{{v}}}", {"v": "<a href='x'>&</a>"}, "<a href='x'>&</a>"),
    Case(
        "raw-ampersand",
        "{{& v}}|{{&v}}",
        {"v": "<a href='x'>&</a>"},
        "<a href='x'>&</a>|<a href='x'>&</a>",
    ),
    Case(
        "missing-and-null",
        "[{{nope}}][{{a.b.c}}][{{n}}][{{{n}}}]",
        {"a": {}, "n": None},
        "[][][][]",
    ),
    Case("booleans", "{{t}} {{f}} {{{f}}}", {"t": True, "f": False}, "true false false"),
    Case(
        "integers",
        "{{i}} {{neg}} {{zero}} {{big}}",
        {"i": 42, "neg": -7, "zero": 0, "big": 12345678901234567890},
        "42 -7 0 12345678901234567000",
    ),
    Case(
        "floats",
        "{{a}} {{b}} {{c}} {{d}} {{e}} {{f}} {{g}} {{h}}",
        {
            "a": 1.0,
            "b": 0.5,
            "c": 1e21,
            "d": 1e-07,
            "e": 123456.789,
            "f": -0.0,
            "g": 0.30000000000000004,
            "h": 1.5e-07,
        },
        "1 0.5 1e+21 1e-7 123456.789 0 0.30000000000000004 1.5e-7",
    ),
    Case(
        "list-to-string",
        "{{l}}|{{{l}}}",
        {"l": [1, [2, [3, None]], None, "x&y", {"a": 1}, True, 2.5]},
        ("1,2,3,,,x&amp;y,[object Object],true,2.5|1,2,3,,,x&y,[object Object],true,2.5"),
    ),
    Case("empty-list-and-dict", "[{{l}}][{{o}}]", {"l": [], "o": {}}, "[][[object Object]]"),
    Case("dict-to-string", "{{o}}", {"o": {"a": 1}}, "[object Object]"),
    Case("dotted-path", "{{project.environment.key}}", EVENT, "production"),
    Case("slash-path", "{{project/environment/name}}", EVENT, "Production"),
    Case(
        "this-paths",
        "{{#with project}}{{this.key}} {{./key}} {{this/environment.name}}{{/with}}",
        EVENT,
        "web web Production",
    ),
    Case(
        "this-and-dot",
        "{{#each tags}}[{{this}}|{{.}}]{{/each}}",
        EVENT,
        "[checkout|checkout][team:payments|team:payments]",
    ),
    Case(
        "parent-path",
        "{{#each tags}}{{../kind}}:{{this}} {{/each}}",
        EVENT,
        "flag:checkout flag:team:payments ",
    ),
    Case(
        "parent-skips-same-context",
        "{{#with project}}{{#if key}}{{../kind}}{{/if}}{{/with}}",
        EVENT,
        "flag",
    ),
    Case("parent-of-root-is-empty", "[{{#if kind}}{{../kind}}{{/if}}][{{..}}]", EVENT, "[][]"),
    Case(
        "parent-two-up",
        ("{{#with project}}{{#with environment}}{{../../kind}} {{../key}}{{/with}}{{/with}}"),
        EVENT,
        "flag web",
    ),
    Case(
        "root",
        "{{#each tags}}{{@root.member.email}} {{/each}}{{@root.kind}}",
        EVENT,
        "ann@example.com ann@example.com flag",
    ),
    Case(
        "index-first-last",
        (
            "{{#each l}}{{@index}}{{#if @first}}F{{/if}}{{#if @last}}L{{/if}}"
            "{{#unless @last}},{{/unless}}{{/each}}"
        ),
        {"l": ["a", "b", "c"]},
        "0F,1,2L",
    ),
    Case(
        "each-dict-key-order",
        (
            "{{#each o}}{{@key}}={{this}}@{{@index}}{{#if @first}}F{{/if}}"
            "{{#if @last}}L{{/if}};{{/each}}"
        ),
        {"o": {"b": 1, "10": 2, "2": 3, "a": 4, "01": 5}},
        "2=3@0F;10=2@1;b=1@2;a=4@3;01=5@4L;",
    ),
    Case("each-list-key-is-index", "{{#each l}}{{@key}}{{/each}}", {"l": ["x", "y"]}, "01"),
    Case(
        "parent-index",
        "{{#each l}}{{#each this}}{{@../index}}.{{@index}} {{/each}}{{/each}}",
        {"l": [["a", "b"], ["c"]]},
        "0.0 0.1 1.0 ",
    ),
    Case(
        "segment-literals",
        "{{[foo bar]}} {{o.[with space]}} {{o.[x.y]}} {{[this]}}",
        {"foo bar": 1, "o": {"with space": 2, "x.y": 3}, "this": 4},
        "1 2 3 4",
    ),
    Case(
        "numeric-segments",
        ("{{items.[0]}} {{items.1.name}} {{items.[1].name}} {{items.length}} {{items.[9]}}"),
        {"items": ["zero", {"name": "one"}]},
        "zero one one 2 ",
    ),
    Case("string-properties", "{{s.length}} {{s.[0]}} {{s.[1]}}", {"s": "héllo"}, "5 h é"),
    Case(
        "data-only-own-keys",
        "[{{o.constructor}}][{{o.toString}}][{{l.push}}]",
        {"o": {}, "l": []},
        "[][][]",
    ),
    Case(
        "lookup",
        (
            "{{lookup o 'k'}} {{lookup l 1}} {{lookup o key}} [{{lookup "
            "missing 'x'}}] {{lookup o 'missing'}}|"
        ),
        {"o": {"k": "v", "dyn": "D"}, "l": ["a", "b"], "key": "dyn"},
        "v b D [] |",
    ),
    Case(
        "lookup-falsy-parent",
        "{{lookup z 'x'}} {{lookup f 'x'}} [{{lookup e 'x'}}] {{lookup l 'length'}}",
        {"z": 0, "f": False, "e": "", "l": [1, 2, 3]},
        "0 false [] 3",
    ),
    Case(
        "lookup-subexpression",
        ("{{#with (lookup o 'inner')}}{{v}}{{/with}} {{#each (lookup o 'list')}}{{this}}{{/each}}"),
        {"o": {"inner": {"v": "V"}, "list": [1, 2]}},
        "V 12",
    ),
    Case(
        "nested-subexpressions",
        "{{pathEncode (lookup (lookup o 'inner') 'v')}}",
        {"o": {"inner": {"v": "a b"}}},
        "a%20b",
    ),
    Case(
        "path-encode",
        "{{pathEncode v}}|{{{pathEncode v}}}",
        {"v": "a b/ü?x=1&y=#z'()"},
        "a%20b/%C3%BC?x&#x3D;1&amp;y&#x3D;#z&#x27;()|a%20b/%C3%BC?x=1&y=#z'()",
    ),
    Case(
        "query-encode",
        "{{queryEncode v}}",
        {"v": "a b/ü?x=1&y=#z'()*!~"},
        "a%20b%2F%C3%BC%3Fx%3D1%26y%3D%23z&#x27;()*!~",
    ),
    Case(
        "encode-non-strings",
        (
            "{{pathEncode missing}} {{pathEncode n}} {{queryEncode l}} "
            "{{queryEncode o}} {{queryEncode t}} {{queryEncode num}}"
        ),
        {"n": None, "l": ["a b", 1], "o": {}, "t": True, "num": 1.5},
        "undefined null a%20b%2C1 %5Bobject%20Object%5D true 1.5",
    ),
    Case(
        "basic-auth",
        "{{basicAuthHeaderValue user pass}}|{{{basicAuthHeaderValue user pass}}}",
        {"user": "ann@example.com", "pass": "pä:ss"},
        ("Basic YW5uQGV4YW1wbGUuY29tOnDDpDpzcw&#x3D;&#x3D;|Basic YW5uQGV4YW1wbGUuY29tOnDDpDpzcw=="),
    ),
    Case(
        "basic-auth-missing",
        "{{basicAuthHeaderValue user missing}}",
        {"user": None},
        "Basic bnVsbDp1bmRlZmluZWQ&#x3D;",
    ),
    Case(
        "format-with-offset",
        (
            "{{formatWithOffset timestamp.milliseconds 0 'milliseconds'}} "
            "{{formatWithOffset timestamp.milliseconds 3600 'seconds'}} "
            "{{formatWithOffset timestamp.milliseconds 0 'rfc3339'}} "
            "{{formatWithOffset timestamp.milliseconds 301 'simple'}} "
            "{{formatWithOffset timestamp.milliseconds 1 'other'}}"
        ),
        EVENT,
        ("1700000000123 1700003600 2023-11-14T22:13:20.123Z 2023-11-14 10:18:21 1700000001123"),
    ),
    Case(
        "format-simple-hours",
        (
            "{{formatWithOffset 0 0 'simple'}}|{{formatWithOffset 0 43200 "
            "'simple'}}|{{formatWithOffset 0 46800 'simple'}}|"
            "{{formatWithOffset 1000 -1.5 'rfc3339'}}"
        ),
        {},
        ("1970-01-01 12:00:00|1970-01-01 12:00:00|1970-01-01 1:00:00|1969-12-31T23:59:59.500Z"),
    ),
    Case(
        "format-seconds-rounding",
        (
            "{{formatWithOffset 1499 0 'seconds'}} {{formatWithOffset 1500 0 "
            "'seconds'}} {{formatWithOffset -1500 0 'seconds'}} "
            "{{formatWithOffset -1501 0 'seconds'}}"
        ),
        {},
        "1 2 -1 -2",
    ),
    Case(
        "format-far-dates",
        (
            "{{formatWithOffset -62198755200000 0 'rfc3339'}} "
            "{{formatWithOffset 253402300800000 0 'rfc3339'}} "
            "{{formatWithOffset -62198755200000 0 'simple'}}"
        ),
        {},
        ("-000001-01-01T00:00:00.000Z +010000-01-01T00:00:00.000Z 00-1-01-01 12:00:00"),
    ),
    Case(
        "literal-arguments",
        (
            '{{lookup o "k"}} {{lookup l 0}} {{pathEncode true}} {{pathEncode '
            "null}} {{pathEncode undefined}} {{pathEncode 1.50}} "
            "{{queryEncode -2}} {{pathEncode 'it\\'s'}} {{pathEncode \"say "
            '\\"hi\\""}}'
        ),
        {"o": {"k": "v"}, "l": ["first"]},
        "v first true null undefined 1.5 -2 it&#x27;s say%20%22hi%22",
    ),
    Case(
        "literal-names-as-paths",
        "{{\"with space\"}} {{true}} {{1}} {{'single'}}",
        {"with space": "ws", "true": "T", "1": "one", "single": "S"},
        "ws T one S",
    ),
    Case(
        "if-truthiness",
        (
            "{{#if s}}s{{/if}}{{#if e}}e{{/if}}{{#if z}}z{{/if}}{{#if one}}1"
            "{{/if}}{{#if el}}el{{/if}}{{#if eo}}eo{{/if}}{{#if n}}n{{/if}}"
            "{{#if missing}}m{{/if}}{{#if f}}f{{/if}}{{#if t}}t{{/if}}{{#if l}}l{{/if}}"
        ),
        {
            "s": "x",
            "e": "",
            "z": 0,
            "one": 1,
            "el": [],
            "eo": {},
            "n": None,
            "f": False,
            "t": True,
            "l": [0],
        },
        "s1eotl",
    ),
    Case("if-else", "{{#if details}}D{{else}}no details{{/if}}", EVENT, "no details"),
    Case("if-caret-else", "{{#if details}}D{{^}}none{{/if}}", EVENT, "none"),
    Case(
        "unless", "{{#unless details}}U{{else}}D{{/unless}}{{#unless kind}}K{{/unless}}", EVENT, "U"
    ),
    Case(
        "else-if-chain",
        (
            "{{#if a}}A{{else if b}}B{{else if c}}C{{else}}none{{/if}}|{{#if "
            "a}}A{{else if c}}C{{/if}}"
        ),
        {"c": 1},
        "C|C",
    ),
    Case(
        "else-chain-other-helpers",
        (
            "{{#if a}}A{{else each l}}{{this}}{{else}}empty{{/if}}|{{#if a}}A"
            "{{else with o}}{{k}}{{/if}}"
        ),
        {"l": [1, 2], "o": {"k": "K"}},
        "12|K",
    ),
    Case("each-list", "{{#each tags}}<{{this}}>{{/each}}", EVENT, "<checkout><team:payments>"),
    Case(
        "each-dict",
        "{{#each customProperties}}{{@key}}: {{name}} {{values}}{{/each}}",
        EVENT,
        "datadog: Datadog env:prod,svc&#x3D;web",
    ),
    Case(
        "each-else",
        (
            "{{#each l}}x{{else}}empty{{/each}}|{{#each o}}x{{else}}empty"
            "{{/each}}|{{#each s}}x{{else}}not a list{{/each}}|{{#each n}}x"
            "{{else}}none{{/each}}"
        ),
        {"l": [], "o": {}, "s": "abc", "n": 5},
        "empty|empty|not a list|none",
    ),
    Case(
        "each-null-items",
        "{{#each l}}[{{this}}]{{#if true}}({{this}}){{/if}}{{/each}}",
        {"l": [1, None, "x"]},
        "[1](1)[]([object Object])[x](x)",
    ),
    Case(
        "each-block-params",
        (
            "{{#each l as |item i|}}{{i}}={{item.name}} {{/each}}{{#each o as "
            "|v k|}}{{k}}:{{v}} {{/each}}"
        ),
        {"l": [{"name": "a"}, {"name": "b"}], "o": {"x": 1}},
        "0=a 1=b x:1 ",
    ),
    Case(
        "block-params-nested",
        ("{{#each outer as |o|}}{{#each o.inner as |i|}}{{o.n}}{{i}} {{/each}}{{/each}}"),
        {"outer": [{"n": "A", "inner": [1, 2]}, {"n": "B", "inner": [3]}]},
        "A1 A2 B3 ",
    ),
    Case(
        "block-param-shadows-helper",
        "{{#each l as |lookup|}}{{lookup}}{{/each}}",
        {"l": ["a", "b"]},
        "ab",
    ),
    Case(
        "with",
        "{{#with project.environment}}{{key}}/{{name}}{{/with}}",
        EVENT,
        "production/Production",
    ),
    Case(
        "with-else",
        (
            "{{#with details}}D{{else}}none{{/with}}|{{#with e}}x"
            "{{else}}empty string{{/with}}|{{#with l}}x{{else}}empty list"
            "{{/with}}|{{#with z}}zero:{{this}}{{/with}}|{{#with o}}object{{/with}}"
        ),
        {"details": None, "e": "", "l": [], "z": 0, "o": {}},
        "none|empty string|empty list|zero:0|object",
    ),
    Case(
        "with-block-param",
        "{{#with project as |p|}}{{p.key}}/{{environment.key}}{{/with}}",
        EVENT,
        "web/production",
    ),
    Case(
        "equal",
        (
            "{{#equal kind 'flag'}}flag{{else}}other{{/equal}} {{#equal kind "
            "'project'}}project{{else}}not project{{/equal}}"
        ),
        EVENT,
        "flag not project",
    ),
    Case(
        "equal-strict",
        (
            "{{#equal one '1'}}A{{else}}a{{/equal}}{{#equal one 1}}B{{/equal}}"
            "{{#equal t 1}}C{{else}}c{{/equal}}{{#equal n missing}}D{{else}}d"
            "{{/equal}}{{#equal missing undefined}}E{{/equal}}{{#equal n "
            "null}}F{{/equal}}{{#equal o o}}G{{/equal}}{{#equal o p}}H"
            "{{else}}h{{/equal}}{{#equal f 1.5}}I{{/equal}}"
        ),
        {"one": 1, "t": True, "n": None, "o": {}, "p": {}, "f": 1.5},
        "aBcdEFGhI",
    ),
    Case(
        "equal-with-else",
        (
            "{{#equalWithElse project.environment.key 'production'}}prod"
            "{{else}}non-prod{{/equalWithElse}}"
        ),
        EVENT,
        "prod",
    ),
    Case(
        "section-list",
        "{{#tags}}[{{this}} {{@index}}]{{/tags}}",
        EVENT,
        "[checkout 0][team:payments 1]",
    ),
    Case(
        "section-dict",
        "{{#member}}{{firstName}} <{{email}}>{{/member}}",
        EVENT,
        "Ann <ann@example.com>",
    ),
    Case(
        "section-scalars",
        ("{{#s}}({{this}}){{/s}}{{#num}}({{this}}){{/num}}{{#t}}(true:{{kind}}){{/t}}"),
        {"s": "str", "num": 5, "t": True, "kind": "K"},
        "(str)(5)(true:K)",
    ),
    Case(
        "section-falsy",
        (
            "{{#f}}F{{else}}f{{/f}}{{#n}}N{{else}}n{{/n}}{{#el}}E{{else}}e"
            "{{/el}}{{#missing}}M{{else}}m{{/missing}}"
        ),
        {"f": False, "n": None, "el": []},
        "fnem",
    ),
    Case(
        "section-zero-and-empty-string-render",
        "{{#z}}zero{{/z}}|{{#e}}empty{{/e}}",
        {"z": 0, "e": ""},
        "zero|empty",
    ),
    Case(
        "inverted-section",
        (
            "{{^f}}F{{/f}}{{^n}}N{{/n}}{{^el}}E{{/el}}{{^missing}}M"
            "{{/missing}}{{^t}}T{{/t}}{{^z}}Z{{/z}}{{^l}}L{{else}}l{{/l}}"
        ),
        {"f": False, "n": None, "el": [], "t": True, "z": 0, "l": [1]},
        "FNEMl",
    ),
    Case(
        "section-dotted-name",
        "{{#project.environment}}{{name}}{{/project.environment}}",
        EVENT,
        "Production",
    ),
    Case("comments", "a{{! short }}b{{!-- long }} with braces --}}c{{!}}d", {}, "abcd"),
    Case(
        "tilde",
        ("a  {{~v~}}  b|{{#if t~}}  x  {{~/if}}|  {{~! c ~}}  |{{v~}} \n {{~v}}"),
        {"v": "V", "t": True},
        "aVb|x||VV",
    ),
    Case(
        "tilde-else",
        "{{#if f}} a {{~else~}} b {{/if}}|{{#if t}} a {{~^~}} b {{~/if}}",
        {"f": False, "t": True},
        "b | a",
    ),
    Case(
        "standalone-lines",
        (
            "<ul>\n"
            "  {{#each tags}}\n"
            "  <li>{{this}}</li>\n"
            "  {{else}}\n"
            "  <li>none</li>\n"
            "  {{/each}}\n"
            "  {{! a comment }}\n"
            "</ul>\n"
        ),
        EVENT,
        ("<ul>\n  <li>checkout</li>\n  <li>team:payments</li>\n</ul>\n"),
    ),
    Case(
        "standalone-crlf",
        ('{\r\n  {{#if kind}}\r\n  "kind": "{{kind}}"\r\n  {{/if}}\r\n}'),
        EVENT,
        ('{\r\n  "kind": "flag"\r\n}'),
    ),
    Case("standalone-at-edges", ("{{#if kind}}\nyes\n{{/if}}"), EVENT, "yes\n"),
    Case(
        "not-standalone",
        ("a {{#if kind}}\nx\n{{/if}} b\n  {{kind}}  \n"),
        EVENT,
        ("a \nx\n b\n  flag  \n"),
    ),
    Case(
        "standalone-inverted", ("[\n{{^details}}\n  none\n{{/details}}\n]"), EVENT, ("[\n  none\n]")
    ),
    Case(
        "standalone-nested",
        (
            "{{#each tags}}\n"
            "  {{#if @first}}\n"
            "  first: {{this}}\n"
            "  {{else}}\n"
            "  then: {{this}}\n"
            "  {{/if}}\n"
            "{{/each}}\n"
        ),
        EVENT,
        ("  first: checkout\n  then: team:payments\n"),
    ),
    Case(
        "escaped-mustache",
        "\\{{kind}} {{kind}} \\\\{{kind}} \\{{a}}{{kind}}",
        EVENT,
        "{{kind}} flag \\flag {{a}}flag",
    ),
    Case(
        "whitespace-in-tags",
        "{{ kind }} {{# if kind }}y{{/ if }} {{  lookup   project   'key'  }}",
        EVENT,
        "flag y web",
    ),
    Case(
        "launchdarkly-style-body",
        (
            "{\n"
            '  "title": "{{{title.plainText}}}",\n'
            '  "text": "{{title.plainText}}",\n'
            "  {{#if member}}\n"
            '  "user": "{{member.email}}",\n'
            "  {{/if}}\n"
            '  "tags": [{{#each tags}}"{{this}}"{{#unless @last}}, {{/unless}}'
            "{{/each}}],\n"
            "  {{#with customProperties}}\n"
            "  {{#if datadog}}\n"
            '  "extra": [{{#each datadog.values}}"{{.}}"{{#if @last}}{{else}},'
            "{{/if}}{{/each}}],\n"
            "  {{/if}}\n"
            "  {{/with}}\n"
            '  "env": "{{#equal project.environment.key \'production\'}}prod'
            '{{else}}{{project.environment.key}}{{/equal}}",\n'
            '  "when": "{{formatWithOffset timestamp.milliseconds 0 \'rfc3339\'}}"\n'
            "}\n"
        ),
        EVENT,
        (
            "{\n"
            '  "title": "Ann turned on "new-checkout" in \'Production\'",\n'
            '  "text": "Ann turned on &quot;new-checkout&quot; in '
            '&#x27;Production&#x27;",\n'
            '  "user": "ann@example.com",\n'
            '  "tags": ["checkout", "team:payments"],\n'
            '  "extra": ["env:prod","svc&#x3D;web"],\n'
            '  "env": "prod",\n'
            '  "when": "2023-11-14T22:13:20.123Z"\n'
            "}\n"
        ),
    ),
]
# an Unleash event, as a webhook addon's bodyTemplate sees it
UNLEASH_EVENT = {
    "event": {
        "id": 41,
        "type": "feature-environment-enabled",
        "createdBy": "ann@example.com",
        "createdAt": "2024-01-02T03:04:05.000Z",
        "featureName": "new-checkout",
        "project": "default",
        "environment": "production",
        "data": {
            "name": "new-checkout",
            "enabled": True,
            "strategies": [{"name": "default"}, {"name": "flexibleRollout"}],
        },
        "preData": None,
        "tags": [{"type": "simple", "value": "web"}],
    }
}

MUSTACHE_CASES = [
    Case(
        "m-escape",
        "{{v}}",
        {"v": "a & b < c > d \" e ' f ` g = h / i"},
        "a &amp; b &lt; c &gt; d &quot; e &#39; f &#x60; g &#x3D; h &#x2F; i",
    ),
    Case(
        "m-raw",
        "{{{v}}}|{{&v}}|{{& v}}",
        {"v": "<a href='/x'>&</a>"},
        "<a href='/x'>&</a>|<a href='/x'>&</a>|<a href='/x'>&</a>",
    ),
    Case(
        "m-values",
        ("[{{n}}][{{missing}}][{{t}}][{{f}}][{{i}}][{{fl}}][{{big}}][{{l}}][{{o}}][{{z}}]"),
        {
            "n": None,
            "t": True,
            "f": False,
            "i": -3,
            "fl": 0.30000000000000004,
            "big": 1e21,
            "l": [1, [2, None], "a/b"],
            "o": {},
            "z": 0,
        },
        ("[][][true][false][-3][0.30000000000000004][1e+21][1,2,,a&#x2F;b][[object Object]][0]"),
    ),
    Case(
        "m-dotted",
        (
            "{{event.data.name}} {{event.data.strategies.1.name}} "
            "{{event.data.strategies.length}} {{event.type.length}}"
        ),
        UNLEASH_EVENT,
        "new-checkout flexibleRollout 2 27",
    ),
    Case("m-dot", "{{#l}}[{{.}}]{{/l}}", {"l": ["a", 1, True]}, "[a][1][true]"),
    Case(
        "m-section-list",
        "{{#event.data.strategies}}{{name}};{{/event.data.strategies}}",
        UNLEASH_EVENT,
        "default;flexibleRollout;",
    ),
    Case(
        "m-section-object",
        "{{#event}}{{featureName}} in {{environment}}{{/event}}",
        UNLEASH_EVENT,
        "new-checkout in production",
    ),
    Case(
        "m-section-scalars",
        "{{#s}}<{{.}}>{{/s}}{{#num}}<{{.}}>{{/num}}{{#t}}<{{k}}>{{/t}}",
        {"s": "str", "num": 7, "t": True, "k": "K"},
        "<str><7><K>",
    ),
    Case(
        "m-section-falsy",
        (
            "[{{#f}}F{{/f}}{{#z}}Z{{/z}}{{#e}}E{{/e}}{{#n}}N{{/n}}{{#el}}L"
            "{{/el}}{{#missing}}M{{/missing}}]"
        ),
        {"f": False, "z": 0, "e": "", "n": None, "el": []},
        "[]",
    ),
    Case(
        "m-inverted",
        (
            "{{^f}}F{{/f}}{{^z}}Z{{/z}}{{^e}}E{{/e}}{{^n}}N{{/n}}{{^el}}L"
            "{{/el}}{{^missing}}M{{/missing}}{{^t}}T{{/t}}{{^l}}l{{/l}}"
        ),
        {"f": False, "z": 0, "e": "", "n": None, "el": [], "t": True, "l": [1]},
        "FZENLM",
    ),
    Case(
        "m-context-stack",
        "{{#a}}{{#b}}{{c}} {{x}} {{a.x}}{{/b}}{{/a}}",
        {"a": {"x": "ax", "b": {"y": 1}}, "c": "outer", "x": "top"},
        "outer ax ax",
    ),
    Case(
        "m-dotted-falls-through",
        "{{#a}}{{b.c}}{{/a}}",
        {"a": {"b": {}}, "b": {"c": "outer"}},
        "outer",
    ),
    Case("m-if-is-a-section", "{{#if}}yes{{/if}}{{^if}}no{{/if}}", {"if": True}, "yes"),
    Case("m-comments", ("a{{! comment }}b{{!multi\nline}}c"), {}, "abc"),
    Case(
        "m-standalone",
        ("[\n  {{#l}}\n  {{.}}\n  {{/l}}\n  {{! note }}\n]\n"),
        {"l": [1, 2]},
        ("[\n  1\n  2\n]\n"),
    ),
    Case(
        "m-standalone-crlf",
        ('{\r\n  {{#t}}\r\n  "a": 1\r\n  {{/t}}\r\n}'),
        {"t": True},
        ('{\r\n  "a": 1\r\n}'),
    ),
    Case("m-standalone-two-tags", ("{{#t}}{{#t}}\nx\n{{/t}}{{/t}}\n"), {"t": True}, "x\n"),
    Case(
        "m-not-standalone",
        ("a {{#t}}\nx\n{{/t}} b\n  {{v}}  \n"),
        {"t": True, "v": "V"},
        ("a \nx\n b\n  V  \n"),
    ),
    Case(
        "m-whitespace-in-tags",
        "{{ v }} {{# t }}y{{/ t }} {{{ v }}} {{& v }}",
        {"v": "<V>", "t": True},
        "&lt;V&gt; y <V> <V>",
    ),
    Case(
        "m-unleash-body",
        (
            '{"text": "{{event.createdBy}} changed {{event.featureName}} ('
            '{{event.type}}) in {{event.environment}}",\n'
            ' "tags": [{{#event.tags}}"{{type}}:{{value}}"{{/event.tags}}],\n'
            ' "enabled": {{event.data.enabled}}}'
        ),
        UNLEASH_EVENT,
        (
            '{"text": "ann@example.com changed new-checkout '
            '(feature-environment-enabled) in production",\n'
            ' "tags": ["simple:web"],\n'
            ' "enabled": true}'
        ),
    ),
    Case("m-no-handlebars-helpers", "{{lookup}}|{{#each}}x{{/each}}|{{@index}}", {}, "||"),
]
# relay's extension: Handlebars.js throws on these (test_extensions_fail_in_handlebars_js)
EXTENSION_CASES = [
    Case(
        "equal-subexpression", "{{#if (equal kind 'flag')}}flag{{else}}other{{/if}}", EVENT, "flag"
    ),
    Case(
        "equal-subexpression-strict",
        (
            "{{#if (equal one '1')}}loose{{else}}strict{{/if}} {{#unless "
            "(equalWithElse kind 'x')}}not x{{/unless}}"
        ),
        {"one": 1, "kind": "flag"},
        "strict not x",
    ),
]


def _ids(cases: list[Case]) -> list[str]:
    """The cases' ids, for pytest."""
    return [case.id for case in cases]


@pytest.mark.parametrize("case", HANDLEBARS_CASES, ids=_ids(HANDLEBARS_CASES))
def test_handlebars_renders_as_handlebars_js(case: Case) -> None:
    """Each Handlebars row renders as Handlebars.js 4.7.8 renders it."""
    assert compile_template(case.template).render(case.context) == case.expected


@pytest.mark.parametrize("case", MUSTACHE_CASES, ids=_ids(MUSTACHE_CASES))
def test_mustache_renders_as_mustache_js(case: Case) -> None:
    """Each Mustache row renders as mustache.js 4.2.0 renders it."""
    assert compile_template(case.template, mustache=True).render(case.context) == case.expected


@pytest.mark.parametrize("case", EXTENSION_CASES, ids=_ids(EXTENSION_CASES))
def test_equal_subexpression_is_a_boolean(case: Case) -> None:
    """`(equal a b)` is `a === b` (relay's extension: Handlebars.js throws on it)."""
    assert compile_template(case.template).render(case.context) == case.expected


def test_a_template_renders_many_contexts() -> None:
    """One compiled template renders any number of contexts, each on its own."""
    # given
    template = compile_template("{{#each tags}}{{this}};{{/each}}{{kind}}", name="body")
    # when
    first = template.render({"tags": ["a"], "kind": "flag"})
    second = template.render({"tags": [], "kind": "project"})
    # then
    assert (template.name, first, second) == ("body", "a;flag", "project")


# ---------------------------------------------------------------- against the real libraries


def _render_with_relay(template: str, context: dict[str, Any], mustache: bool) -> dict[str, str]:
    """Relay's output, or its error, in the shape render.js answers."""
    try:
        return {"output": compile_template(template, mustache=mustache).render(context)}
    except (TemplateError, RenderError) as exc:
        return {"error": str(exc)}


def test_tables_match_node(node_modules: Path) -> None:
    """Handlebars.js and mustache.js give every row's expected output, as relay does."""
    # given
    rows = [(c, False) for c in HANDLEBARS_CASES] + [(c, True) for c in MUSTACHE_CASES]
    # when
    results = render_with_node(node_modules, [(c.template, c.context, m) for c, m in rows])
    # then
    wrong = {
        case.id: (result, case.expected)
        for (case, _), result in zip(rows, results, strict=True)
        if result != {"output": case.expected}
    }
    assert wrong == {}


def test_extensions_fail_in_handlebars_js(node_modules: Path) -> None:
    """Handlebars.js throws on `(equal a b)`: the extension rows are relay's alone."""
    cases = [(c.template, c.context, False) for c in EXTENSION_CASES]
    results = render_with_node(node_modules, cases)
    assert all("is not a function" in result.get("error", "") for result in results)


def test_random_templates_match_node(node_modules: Path) -> None:
    """Seeded random templates render as in JavaScript: the same output, or an error in both."""
    # given
    generator = random.Random(20261204)
    cases = [_random_case(generator, mustache=index % 3 == 0) for index in range(450)]
    # when
    expected = render_with_node(node_modules, cases)
    # then
    rendered = sum("output" in result for result in expected)
    assert rendered > len(cases) // 2  # most must render, or the comparison proves little
    for (template, context, mustache), result in zip(cases, expected, strict=True):
        ours = _render_with_relay(template, context, mustache)
        if "error" in result:
            assert "error" in ours, (template, context, mustache)
        else:
            assert ours == result, (template, context, mustache)


_SPACES = ["", " ", "\n", "  \n", "\n  ", "\r\n", "\t", " x ", "\n\n", "\u00a0", "\ufeff", "\v"]
_PATHS = ["a", "b", "c.d", "c.l", "l", "o", "s", "n", "this", ".", "z", "e", "missing"]
_PATHS += ["@index", "@key", "@first", "@last", "../a", "../../a", "@root.a", "c.l.[1]"]
_PATHS += ["l.length", "@../index", "'lit'", "1.50", "null", "(lookup c 'd')"]
_INLINE = ["{{%s}}", "{{{%s}}}", "{{& %s}}", "{{! c }}", "{{!-- c\n --}}", "\\{{%s}}"]
_INLINE += ["\\\\{{%s}}", "{{pathEncode %s}}", "{{lookup c 'd'}}", "{{queryEncode (lookup %s 0)}}"]
_HELPERS = ["if", "unless", "each", "with", "equal", "section", "inverted"]


def _random_context(generator: random.Random) -> dict[str, Any]:
    """A context with values of every kind, some picked at random."""
    pick = generator.choice
    return {
        "a": "x&y",
        "b": pick([True, False, 0, 1, "", None]),
        "c": {"d": "D", "l": [1, 2]},
        "l": pick([[], [1, "two", None], [{"d": "e"}, {"d": "f"}]]),
        "o": pick([{}, {"k": "v", "2": "two", "1": "one"}]),
        "s": "str'\"",
        "n": pick([0, 1.5, -3, 1e21]),
        "z": 0,
        "e": "",
        "t": True,
    }


def _tilde(generator: random.Random) -> str:
    """`~` one time in five."""
    return "~" if generator.random() < 0.2 else ""


def _random_handlebars(generator: random.Random, depth: int = 0) -> str:
    """Up to four statements, blocks nested up to four deep."""
    out = []
    for _ in range(generator.randint(0, 4)):
        out.append(generator.choice(_SPACES))
        if generator.random() < 0.3 or depth > 3:
            inline = generator.choice(_INLINE).replace("%s", generator.choice(_PATHS))
            if inline.startswith("{{") and not inline.startswith("{{{"):
                inline = "{{" + _tilde(generator) + inline[2:-2] + _tilde(generator) + "}}"
            out.append(inline)
        else:
            out.append(_random_block(generator, depth))
        out.append(generator.choice(_SPACES))
    return "".join(out)


def _random_block(generator: random.Random, depth: int) -> str:
    """A block helper or section, maybe with `{{else}}` or an `{{else if}}` chain."""
    helper, arg = generator.choice(_HELPERS), generator.choice(_PATHS)
    left, right = _tilde(generator), _tilde(generator)
    if helper == "equal":
        opening = f"{{{{{left}#equal {arg} {generator.choice(_PATHS)}{right}}}}}"
    elif helper in ("section", "inverted"):
        sign, helper = "#" if helper == "section" else "^", generator.choice("ablozt")
        opening = f"{{{{{left}{sign}{helper}{right}}}}}"
    else:
        opening = f"{{{{{left}#{helper} {arg}{right}}}}}"
    inverse = ""
    if generator.random() < 0.4:
        mark = _tilde(generator)
        if generator.random() < 0.3 and helper in ("if", "unless", "each", "with"):
            inverse = f"{{{{{mark}else if {generator.choice(_PATHS)}}}}}"
            inverse += _random_handlebars(generator, depth + 1)
        inverse += generator.choice(_SPACES) + generator.choice(["{{else}}", "{{^}}", "{{~else~}}"])
        inverse += _random_handlebars(generator, depth + 1)
    body = _random_handlebars(generator, depth + 1)
    closing = f"{{{{{_tilde(generator)}/{helper}{_tilde(generator)}}}}}"
    return opening + body + inverse + generator.choice(_SPACES) + closing


def _random_mustache(generator: random.Random, depth: int = 0) -> str:
    """Up to four Mustache tags or sections, sections nested up to four deep."""
    out = []
    for _ in range(generator.randint(0, 4)):
        out.append(generator.choice(_SPACES))
        if generator.random() < 0.4 or depth > 3:
            tag = generator.choice(["{{%s}}", "{{{%s}}}", "{{&%s}}", "{{! c }}", "{{ %s }}"])
            names = ["a", "b", "c.d", "c.l", "l", "o", "s", "n", ".", "z", "d", "c.l.1", "s.length"]
            out.append(tag.replace("%s", generator.choice(names)))
        else:
            name, sign = generator.choice("abclonzet"), generator.choice("#^")
            inner = _random_mustache(generator, depth + 1)
            out.append(f"{{{{{sign}{name}}}}}{inner}{generator.choice(_SPACES)}{{{{/{name}}}}}")
        out.append(generator.choice(_SPACES))
    return "".join(out)


def _random_case(generator: random.Random, *, mustache: bool) -> tuple[str, dict[str, Any], bool]:
    """A random template of either kind, with a random context."""
    template = _random_mustache(generator) if mustache else _random_handlebars(generator)
    return template, _random_context(generator), mustache


# ---------------------------------------------------------------- refusals and their messages

COMPILE_ERRORS = [
    ("{{#if a}}\n  {{/each}}", False, "template:2:3: {{/each}} does not close {{#if}}"),
    ("{{#if a}}x", False, "template:1:11: expected {{/if}}, found the end of the template"),
    ("x{{/if}}", False, "template:1:2: {{/...}} closes no open block"),
    ("{{else}}", False, "template:1:1: '{{else}}' is outside any block"),
    ("ok\n {{a", False, "template:2:4: the tag is not closed with }}"),
    ("{{items.0}}", False, "template:1:9: expected a name after '.', found '0'"),
    ("{{a.this}}", False, "template:1:3: invalid path 'a.this': 'this' inside a path"),
    ("{{!-- never closed }}", False, "template:1:1: the comment {{!-- is not closed with --}}"),
    ("{{(lookup a 'b')}}", False, "template:1:3: expected a name or a value, found '('"),
    ("a\x00b", False, "template:1:2: a NUL character (Handlebars' lexer stops at it)"),
    ("{{#a}}{{/b}}", True, "template:1:7: {{/b}} does not close {{#a}}"),
    ("{{#a}}\n{{#b}}\n{{/b}}", True, "template:1:1: the section 'a' is not closed"),
    ("x\n{{/a}}", True, "template:2:1: {{/a}} closes no open section"),
    ("ok\n  {{a", True, "template:2:3: the tag is not closed with }}"),
    ("{{{a}}", True, "template:1:1: the tag is not closed with }}"),
]


@pytest.mark.parametrize(("template", "mustache", "message"), COMPILE_ERRORS)
def test_a_broken_template_is_refused_at_its_line_and_column(
    template: str, mustache: bool, message: str
) -> None:
    """A template that does not parse raises TemplateError naming line:column and the fault."""
    with pytest.raises(TemplateError) as raised:
        compile_template(template, mustache=mustache)
    assert str(raised.value) == message


UNSUPPORTED = [
    ("line\n{{> partial}}", False, "template:2:1: partials ({{> name}}) are not supported"),
    ("{{#> layout}}x{{/layout}}", False, "partial blocks ({{#> name}}) are not supported"),
    ("{{{{raw}}}}x{{{{/raw}}}}", False, "raw blocks ({{{{raw}}}}) are not supported"),
    ("{{* decorator}}", False, "decorators ({{* x}}) are not supported"),
    ('{{#* inline "x"}}y{{/inline}}', False, "decorators ({{* x}}) are not supported"),
    ("{{link text=title}}", False, "template:1:8: hash arguments (text=...) are not supported"),
    ("{{foo bar}}", False, "template:1:3: foo is not a helper this renderer knows"),
    ("{{a.b c}}", False, "a.b is not a helper this renderer knows"),
    ("{{#each l as |x|}}{{x y}}{{/each}}", False, "x is not a helper this renderer knows"),
    ("{{#if (nope a)}}x{{/if}}", False, "nope is not a helper this renderer knows"),
    ("{{lookup a b c}}", False, "template:1:1: lookup takes 2 arguments, not 3"),
    ("{{lookup}}", False, "lookup takes 2 arguments, not 0"),
    ("{{formatWithOffset a}}", False, "formatWithOffset takes 3 arguments, not 1"),
    ("{{#if a b}}x{{/if}}", False, "if takes 1 argument, not 2"),
    ("{{if a}}", False, "if is a block helper: write {{#if ...}}"),
    ("{{equal a b}}", False, "equal is a block helper: write {{#equal ...}}"),
    ("{{#pathEncode a}}x{{/pathEncode}}", False, "pathEncode is not a block helper"),
    ("{{#if (if a)}}x{{/if}}", False, "if cannot be called in a subexpression"),
    ("{{#if a as |x|}}{{/if}}", False, "block parameters (as |x|) need {{#each}} or {{#with}}"),
    ("{{^each a as |x|}}{{/each}}", False, "block parameters (as |x|) need {{#each}}"),
    ("{{log a}}", False, "the log helper is not supported"),
    ("{{> p}}", True, "template:1:1: partials ({{> name}}) are not supported"),
    ("{{=<% %>=}}", True, "template:1:1: set delimiters ({{=<% %>=}}) are not supported"),
]


@pytest.mark.parametrize(("template", "mustache", "message"), UNSUPPORTED)
def test_a_feature_outside_the_subset_is_refused_at_compile_time(
    template: str, mustache: bool, message: str
) -> None:
    """Partials, decorators, raw blocks, hashes and unknown or misused helpers: TemplateError."""
    with pytest.raises(TemplateError, match=r"^template:") as raised:
        compile_template(template, mustache=mustache)
    assert message in str(raised.value)


def test_the_template_name_is_in_messages() -> None:
    """TemplateError starts with the name the caller gave."""
    with pytest.raises(TemplateError, match=r"^datadog/default\.json\.hbs:1:3: "):
        compile_template("{{nope x}}", name="datadog/default.json.hbs")


def test_handlebars_js_fails_where_relay_refuses(node_modules: Path) -> None:
    """What relay refuses as unknown or misused helpers also fails in Handlebars.js."""
    # given the refusals that Handlebars.js would only find when rendering
    templates = ["{{foo bar}}", "{{a.b c}}", "{{if a}}", "{{equal a b}}", "{{lookup}}"]
    templates += ["{{#if a b}}x{{/if}}", "{{items.0}}", "{{#if a}}x", "{{#a}}{{/b}}"]
    # when
    results = render_with_node(node_modules, [(t, {"a": 1}, False) for t in templates])
    # then
    assert [("error" in result) for result in results] == [True] * len(templates)


# ---------------------------------------------------------------- bounds


def test_steps_are_bounded() -> None:
    """Nested loops over a large list stop at max_steps with RenderError."""
    # given 100 x 100 x 100 iterations
    template = compile_template(
        "{{#each a}}{{#each ../a}}{{#each ../../a}}x{{/each}}{{/each}}{{/each}}"
    )
    # when / then
    with pytest.raises(RenderError, match="passed its bound of 200000 steps"):
        template.render({"a": list(range(100))})


def test_steps_are_bounded_in_mustache() -> None:
    """Mustache sections count their steps the same way."""
    template = compile_template("{{#a}}{{#a}}{{#a}}x{{/a}}{{/a}}{{/a}}", mustache=True)
    with pytest.raises(RenderError, match="passed its bound of 5000 steps"):
        template.render({"a": list(range(100))}, max_steps=5000)


def test_the_step_bound_is_the_callers() -> None:
    """A render within max_steps completes; one step fewer is refused."""
    # given a template that takes a known number of steps
    template = compile_template("{{#each a}}{{this}}{{/each}}")
    context = {"a": list(range(10))}
    steps = _steps_needed(template, context)
    # when / then
    assert template.render(context, max_steps=steps) == "0123456789"
    with pytest.raises(RenderError, match="steps"):
        template.render(context, max_steps=steps - 1)


def _steps_needed(template: Any, context: dict[str, Any]) -> int:
    """The smallest max_steps the render passes with."""
    for steps in range(1, 1000):
        try:
            template.render(context, max_steps=steps)
        except RenderError:
            continue
        return steps
    raise AssertionError("no bound under 1000 steps")


def test_output_is_bounded() -> None:
    """Output past max_bytes characters raises RenderError."""
    # given 2000 items of 1000 characters: 2 million characters
    template = compile_template("{{#each a}}{{@root.s}}{{/each}}")
    context = {"a": list(range(2000)), "s": "x" * 1000}
    # when / then
    with pytest.raises(RenderError, match="passed its bound of 1000000 characters"):
        template.render(context)
    assert len(template.render(context, max_bytes=2_000_000)) == 2_000_000


def test_output_bound_counts_characters() -> None:
    """max_bytes counts characters of the output: exactly the bound passes."""
    template = compile_template("{{{s}}}", mustache=True)
    assert template.render({"s": "é" * 10}, max_bytes=10) == "é" * 10
    with pytest.raises(RenderError, match="characters"):
        template.render({"s": "é" * 11}, max_bytes=10)


def test_source_size_is_bounded() -> None:
    """A source over max_source characters is refused before parsing."""
    compile_template("x" * 10, max_source=10)
    with pytest.raises(TemplateError, match="has 11 characters, over the limit of 10"):
        compile_template("x" * 11, max_source=10)


@pytest.mark.parametrize(
    ("opening", "closing", "mustache"),
    [
        ("{{#if a}}", "{{/if}}", False),
        ("{{#each a}}", "{{/each}}", False),
        ("{{#a}}", "{{/a}}", True),
    ],
)
def test_nesting_is_bounded(opening: str, closing: str, mustache: bool) -> None:
    """Blocks and sections nest 64 deep at most."""
    compile_template(opening * 64 + closing * 64, mustache=mustache)
    with pytest.raises(TemplateError, match="nest deeper than 64"):
        compile_template(opening * 65 + closing * 65, mustache=mustache)


def test_subexpression_nesting_is_bounded() -> None:
    """Subexpressions nest 64 deep at most."""
    deep = "{{pathEncode " + "(pathEncode " * 64 + "a" + ")" * 64 + "}}"
    assert compile_template(deep).render({"a": " "}) == "%" + "25" * 64 + "20"  # 65 encodings
    with pytest.raises(TemplateError, match="nest deeper than 64"):
        compile_template("{{pathEncode " + "(pathEncode " * 65 + "a" + ")" * 65 + "}}")


def test_else_if_links_count_as_nesting() -> None:
    """Each `{{else if}}` link nests one level, so a chain of 65 is refused."""
    chain = "{{#if a}}" + "{{else if a}}" * 63 + "{{/if}}"
    compile_template(chain)
    with pytest.raises(TemplateError, match="nest deeper than 64"):
        compile_template("{{#if a}}" + "{{else if a}}" * 64 + "{{/if}}")


def test_a_deeply_nested_list_value_is_refused() -> None:
    """Rendering a list nested past 64 levels raises RenderError, not RecursionError."""
    value: list[Any] = ["x"]
    for _ in range(100):
        value = [value]
    with pytest.raises(RenderError, match="nested deeper than 64"):
        compile_template("{{v}}").render({"v": value})


def test_a_huge_list_value_costs_steps() -> None:
    """Turning a list into text counts a step per element."""
    with pytest.raises(RenderError, match="steps"):
        compile_template("{{v}}").render({"v": [1] * 300_000})


def test_format_with_offset_refuses_non_numbers() -> None:
    """formatWithOffset on a missing or non-number time raises RenderError (JavaScript: NaN)."""
    template = compile_template("{{formatWithOffset t 0 'rfc3339'}}")
    for value in (None, "1700000000000", True, 1e20):
        with pytest.raises(RenderError, match="formatWithOffset"):
            template.render({"t": value})
