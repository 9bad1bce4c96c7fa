/** The cells of the verification matrix: backends x --dr-switch modes x scenarios. */
import * as path from 'path';
import { DR_SWITCH_MODES } from '../vmm/api/vm-options';
import { Expectation, notApplicable } from './expectations';
import { findKvmUnitTests, KVM_UNIT_TESTS_ENV, KvmUnitTestsLookup } from './kvm-unit-tests-dir';
import { findScenario, Scenario, SCENARIOS } from './scenarios';
import { VerifyBackend, VerifyOptions } from './verify-options';

export const ALL_BACKENDS: readonly VerifyBackend[] = ['vmx', 'svm'];
/** kvm (the host's /dev/kvm) runs only when named: the default selection stays the simulated backends. */
export const SELECTABLE_BACKENDS: readonly VerifyBackend[] = [...ALL_BACKENDS, 'kvm'];
/** kvm has no --dr-switch modes: its one row per scenario is the host kernel's switch. */
export const KVM_MODE = 'host';

export interface Cell {
  /** Position in the table (0-based). */
  index: number;
  backend: VerifyBackend;
  mode: string;
  scenario: Scenario;
  expected: Expectation;
  /** The folder of the scenario's kvm-unit-tests binary, when it has one and it was found. */
  kvmUnitTestsDir?: string;
  /** Why the cell is n/a although the scenario would run it: its kvm-unit-tests binary is missing. */
  missing?: string;
}

/** Where a kvm-unit-tests binary is (or why it is not there). */
export type KvmUnitTestsLocator = (file: string) => KvmUnitTestsLookup;

const REPO_ROOT = path.resolve(__dirname, '..', '..');

/** $KVM_UNIT_TESTS_DIR, else shared/kvm-unit-tests beside or above this repository. */
export const locateKvmUnitTests: KvmUnitTestsLocator = (file) => findKvmUnitTests(file, REPO_ROOT);

/** A selection that names something that does not exist. */
export class MatrixSelectionError extends Error {}

function selected<T extends string>(asked: readonly string[] | undefined, all: readonly T[], what: string): T[] {
  if (asked === undefined || asked.length === 0) return [...all];
  const unknown = asked.filter((name) => !(all as readonly string[]).includes(name));
  if (unknown.length > 0) {
    throw new MatrixSelectionError(`unknown ${what} ${unknown.join(', ')} (known: ${all.join(', ')})`);
  }
  // Table order follows the canonical order, whatever order the flags were given in.
  return all.filter((name) => asked.includes(name));
}

/** Every cell of the selection, in table order (backend, then mode, then scenario). */
export function buildMatrix(opts: Pick<VerifyOptions, 'backends' | 'drSwitch' | 'scenarios'>,
  locate: KvmUnitTestsLocator = locateKvmUnitTests): Cell[] {
  const backends = opts.backends === undefined || opts.backends.length === 0 ? [...ALL_BACKENDS]
    : selected(opts.backends, SELECTABLE_BACKENDS, 'backend');
  const modes = selected(opts.drSwitch, DR_SWITCH_MODES, '--dr-switch mode');
  const names = selected(opts.scenarios, SCENARIOS.map((s) => s.name), 'scenario');
  const lookups = new Map<string, KvmUnitTestsLookup>();
  const lookup = (file: string): KvmUnitTestsLookup => {
    if (!lookups.has(file)) lookups.set(file, locate(file));
    return lookups.get(file) as KvmUnitTestsLookup;
  };
  const cells: Cell[] = [];
  for (const backend of backends) {
    for (const mode of backend === 'kvm' ? [KVM_MODE] : modes) {
      for (const name of names) {
        const scenario = findScenario(name) as Scenario;
        const cell: Cell = { index: cells.length, backend, mode, scenario, expected: scenario.expect(backend, mode) };
        if (scenario.kvmUnitTest !== undefined && cell.expected.kind !== 'n/a') {
          const found = lookup(scenario.kvmUnitTest);
          if (found.dir !== undefined) cell.kvmUnitTestsDir = found.dir;
          else {
            cell.missing = found.why;
            cell.expected = notApplicable(`needs kvm-unit-tests' ${scenario.kvmUnitTest}: ${found.why} ` +
              `(set ${KVM_UNIT_TESTS_ENV})`);
          }
        }
        cells.push(cell);
      }
    }
  }
  return cells;
}
