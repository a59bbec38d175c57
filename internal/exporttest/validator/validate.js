// Validates the HAR files named on the command line against the HAR 1.2
// JSON schema (har-schema, through har-validator). Exit status 1 and the
// schema errors on stderr if one is invalid.
'use strict';
const fs = require('fs');
const validate = require('har-validator');

async function main() {
  let bad = 0;
  for (const path of process.argv.slice(2)) {
    const har = JSON.parse(fs.readFileSync(path, 'utf8'));
    try {
      await validate.har(har);
      console.log(`${path}: valid HAR 1.2, ${har.log.entries.length} entries`);
    } catch (e) {
      bad++;
      console.error(`${path}: invalid: ${JSON.stringify(e.errors || e.message, null, 1)}`);
    }
  }
  process.exit(bad ? 1 : 0);
}
main();
