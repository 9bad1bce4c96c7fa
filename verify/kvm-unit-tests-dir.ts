/**
 * Where the unmodified kvm-unit-tests binaries are: $KVM_UNIT_TESTS_DIR when set, else the
 * first `shared/kvm-unit-tests` folder found beside or above the repository root (the main
 * clone /work/main finds /work/shared/kvm-unit-tests, and so does a worktree /work/wt/NAME).
 * A fresh user clone has none: what needs them says so and is left out.
 */
import * as fs from 'fs';
import * as path from 'path';

/** The environment variable that points at the folder. */
export const KVM_UNIT_TESTS_ENV = 'KVM_UNIT_TESTS_DIR';

export type KvmUnitTestsLookup = { dir: string } | { dir?: undefined; why: string };

/** How many folders up from the repository root the search looks. */
const SEARCH_DEPTH = 6;

/**
 * The folder that holds `file` (a binary every user of the folder needs), or why there is
 * none. `env` and `repoRoot` are parameters so that tests can point them elsewhere.
 */
export function findKvmUnitTests(file: string, repoRoot: string,
  env: NodeJS.ProcessEnv = process.env): KvmUnitTestsLookup {
  const given = env[KVM_UNIT_TESTS_ENV];
  if (given) {
    return fs.existsSync(path.join(given, file)) ? { dir: path.resolve(given) }
      : { why: `$${KVM_UNIT_TESTS_ENV}=${given} has no ${file}` };
  }
  let dir = path.resolve(repoRoot);
  for (let i = 0; i < SEARCH_DEPTH; i++) {
    for (const candidate of [path.join(dir, 'shared', 'kvm-unit-tests'), path.join(dir, '..', 'shared', 'kvm-unit-tests')]) {
      if (fs.existsSync(path.join(candidate, file))) return { dir: path.resolve(candidate) };
    }
    const up = path.dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  return { why: `no shared/kvm-unit-tests folder with ${file} beside or above ${path.resolve(repoRoot)}` };
}
