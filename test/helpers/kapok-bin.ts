/**
 * How tests start the `kapok` command. `npm test` (scripts/test.mjs) bundles the checkout's
 * sources first and names the bundle in KAPOK_TEST_BUNDLE: each spawned process then loads one
 * bundle (~0.6 s of CPU) instead of compiling hundreds of files through tsx (~2.5 s), and the tests
 * run what `npm start` ships. A test file run alone (`node --import tsx --test FILE`) has no
 * bundle and runs the sources through tsx, so it never tests a stale build.
 */
const root = new URL('../../', import.meta.url).pathname;
// Resolved here, not by the child: the child may run in a temp cwd where 'tsx' is not resolvable.
const tsx = import.meta.resolve('tsx');

/** Node arguments that run the CLI: append the command's own arguments. */
export function kapokArgv(): string[] {
  const bundle = process.env.KAPOK_TEST_BUNDLE;
  return bundle ? [bundle] : ['--import', tsx, `${root}src/cli/main.ts`];
}
