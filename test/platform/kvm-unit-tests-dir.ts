/**
 * Where the unmodified kvm-unit-tests binaries are, as verify finds them
 * (verify/kvm-unit-tests-dir.ts): $KVM_UNIT_TESTS_DIR, else the first `shared/kvm-unit-tests`
 * folder beside or above the repository root. A fresh user clone has none: the tests that
 * need them say so and skip.
 */
import * as path from 'path';
import { findKvmUnitTests } from '../../verify/kvm-unit-tests-dir';

const REPO_ROOT = path.resolve(__dirname, '..', '..', '..'); // dist/test/platform -> repo root

export function kvmUnitTestsDir(): string | undefined {
  return findKvmUnitTests('dummy.flat', REPO_ROOT).dir;
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
