// Renders a batch of templates with the real Handlebars.js and mustache.js, for
// test_handlebars.py to compare relay's renderer against.
// stdin: a JSON array of {template, context, mustache}; stdout: a JSON array of
// {output} or {error}, in the same order. NODE_PATH names the folder holding the packages.
'use strict';

const Handlebars = require('handlebars');
const Mustache = require('mustache');
const dateFormat = require('dateformat');

// The helpers LaunchDarkly's integration framework registers (helpers/index.js there),
// written again here with the same behaviour.
function registerHelpers(hb) {
  const ifEqual = function (left, right, options) {
    return left === right ? options.fn(this) : options.inverse(this);
  };
  hb.registerHelper('equal', ifEqual);
  hb.registerHelper('equalWithElse', ifEqual);
  hb.registerHelper('pathEncode', (value) => encodeURI(value));
  hb.registerHelper('queryEncode', (value) => encodeURIComponent(value));
  hb.registerHelper('basicAuthHeaderValue', (user, password) => {
    const pair = `${user}:${password}`;
    return 'Basic ' + Buffer.from(pair).toString('base64');
  });
  hb.registerHelper('formatWithOffset', (milliseconds, offset, format) => {
    const when = new Date(milliseconds + 1000 * offset);
    if (format === 'seconds') return Math.round(when.getTime() / 1000);
    if (format === 'rfc3339') return when.toISOString();
    if (format === 'simple') return dateFormat(when, 'yyyy-mm-dd h:MM:ss');
    return when.getTime();
  });
}

function renderOne(hb, item) {
  try {
    if (item.mustache) {
      return { output: Mustache.render(item.template, item.context) };
    }
    return { output: hb.compile(item.template)(item.context) };
  } catch (err) {
    return { error: String(err && err.message ? err.message : err) };
  }
}

function main() {
  const chunks = [];
  process.stdin.on('data', (chunk) => chunks.push(chunk));
  process.stdin.on('end', () => {
    const items = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    const hb = Handlebars.create();
    registerHelpers(hb);
    const results = items.map((item) => renderOne(hb, item));
    process.stdout.write(JSON.stringify(results));
  });
}

main();
