/**
 * Where the unmodified kvm-unit-tests binaries are: $KVM_UNIT_TESTS_DIR, else the first
 * `shared/kvm-unit-tests` folder found going up from the repository root (a worktree under
 * /work/wt/NAME finds /work/shared/kvm-unit-tests; the main clone /work/main does too).
 * A fresh user clone has none: the tests that need them say so and skip.
 */
import * as fs from 'fs';
import * as path from 'path';

export function kvmUnitTestsDir(): string | undefined {
  const env = process.env.KVM_UNIT_TESTS_DIR;
  if (env) return fs.existsSync(path.join(env, 'dummy.flat')) ? env : undefined;
  let dir = path.resolve(__dirname, '..', '..', '..'); // dist/test/platform -> repo root
  for (let i = 0; i < 6; i++) {
    const candidate = path.join(dir, 'shared', 'kvm-unit-tests');
    if (fs.existsSync(path.join(candidate, 'dummy.flat'))) return candidate;
    const sibling = path.join(dir, '..', 'shared', 'kvm-unit-tests');
    if (fs.existsSync(path.join(sibling, 'dummy.flat'))) return path.resolve(sibling);
    const up = path.dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  return undefined;
}

/** Prints the one skip line (once per process) and returns the directory or undefined. */
let said = false;
export function kvmUnitTestsOrSkip(): string | undefined {
  const dir = kvmUnitTestsDir();
  if (!dir && !said) {
    said = true;
    console.log('    (skipped: no ../shared/kvm-unit-tests folder with the kvm-unit-tests binaries; set KVM_UNIT_TESTS_DIR to use another)');
  }
  return dir;
}
