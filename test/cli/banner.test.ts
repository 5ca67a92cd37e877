import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { startBanner } from '../../src/cli/banner.js';
import { configSchema } from '../../src/config.js';

describe('kapok up banner', () => {
  it('sends `kapok v2x simulate` to the grant it needs while edge refuses anonymous clients (the default)', () => {
    const out = startBanner(configSchema.parse({}), 8080);
    assert.match(
      out,
      /try: kapok v2x simulate \(after an anonymous edge\.acl grant: docs\/v2x\.md#quick-start\)/,
    );
    const open = startBanner(configSchema.parse({ edge: { auth: { anonymous: true } } }), 8080);
    assert.match(open, /try: kapok v2x simulate$/m);
  });
});
