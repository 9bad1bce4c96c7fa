/**
 * The scenarios of the verification matrix (issue 5, section 2): what each runs, and what
 * each must show per backend and --dr-switch mode. A mode not listed for a scenario is
 * "n/a": that part of the fix plays no role in what the scenario looks at, so the cell is
 * not run (the part is proved by another scenario).
 */
import { detect, Expectation, notApplicable, pass } from './expectations';
import { VerifyBackend } from './verify-options';

/** stock gdb runs a scenario script from gdb-scripts/ against `serve` of the guest. */
export interface GdbRun {
  kind: 'gdb';
  script: string;
  guest: string;
}

/** `vmm-gdbstub run` of a guest with its own checks (PASS/FAIL lines, exit status 0). */
export interface GuestRun {
  kind: 'guest';
  guest: string;
  args: string[];
}

/**
 * `vmm-gdbstub run --json` of a guest with no debugger: the host's side of the story (the
 * leak detector's count, the host watchpoint hits) and the guest's exit status.
 */
export interface StatsRun {
  kind: 'stats';
  guest: string;
  args: string[];
  /** No leak may be reported (failure kind "leak"). */
  noLeaks: boolean;
  /** The host's own watchpoints must have fired (failure kind "host-watch-disturbed"). */
  hostWatchFires: boolean;
}

/**
 * `vmm-gdbstub run` of an unmodified kvm-unit-tests binary from the kvm-unit-tests folder
 * (not shipped: see kvm-unit-tests-dir.ts), judged by its PASS/FAIL lines and SUMMARY.
 */
export interface KutRun {
  kind: 'kut';
  /** The binary's file name in the kvm-unit-tests folder. */
  file: string;
  args: string[];
  /** What sets this run apart (its host scenario): named in the cell's detail. */
  label: string;
}

export type ScenarioRun = GdbRun | GuestRun | StatsRun | KutRun;

type ModeExpectations = Partial<Record<string, Expectation | ((backend: VerifyBackend) => Expectation)>>;

export interface Scenario {
  name: string;
  title: string;
  /** The kvm-unit-tests binary the scenario runs; without it its cells are n/a. */
  kvmUnitTest?: string;
  runs(backend: VerifyBackend): ScenarioRun[];
  expect(backend: VerifyBackend, mode: string): Expectation;
}

function scenario(name: string, title: string, runs: (backend: VerifyBackend) => ScenarioRun[],
  modes: ModeExpectations): Scenario {
  return {
    name, title, runs,
    expect(backend, mode) {
      if (backend === 'kvm') return kvmExpectation(name);
      const entry = modes[mode];
      if (entry === undefined) return notApplicable(`--dr-switch ${mode} plays no role in ${name}`);
      return typeof entry === 'function' ? entry(backend) : entry;
    },
  };
}

const gdb = (script: string, guest: string): GdbRun => ({ kind: 'gdb', script, guest });
const vmxOnly = (e: Expectation, why = 'a VT-x-only part of the fix') =>
  (b: VerifyBackend): Expectation => (b === 'vmx' ? e : notApplicable(why));
const svmOnly = (e: Expectation, why = 'an SVM-only part of the fix') =>
  (b: VerifyBackend): Expectation => (b === 'svm' ? e : notApplicable(why));

/**
 * On kvm the host kernel switches the debug registers: what applies must simply pass (and
 * shows it when this host gets it wrong); what needs our host scenarios, leak detector or
 * SVM VMCB does not apply.
 */
const KVM_SCENARIOS = ['watch-write', 'access-hbreak', 'selfwatch', 'stepping'];
function kvmExpectation(name: string): Expectation {
  return KVM_SCENARIOS.includes(name) ? pass("on the host's /dev/kvm: the host kernel switches the debug registers")
    : notApplicable(`${name} needs the simulated host (host scenarios, leak detector or the SVM VMCB)`);
}

const LOST_DRS = 'guest DR0-3/DR7 lost at VM exits: hits missed';

/**
 * kvm-unit-tests' x86 debug test, unmodified (/work/shared/reference/kvm-unit-tests-debug.md
 * lists its cases). Each case arms its breakpoint and hits it with no VM exit in between,
 * but the report of one case (UART output: an I/O exit per character) comes between some
 * cases and the debug registers they reuse: case 6 uses the DR7 = 0x420 of case 5, case 15
 * the DR1 watchpoint of case 14, cases 18-19 that DR1 and the DR7 set once before case 17.
 * So a DR0-3 or DR7 lost at VM exits shows up there, and a DR6 that is not the guest's in
 * case 5 (its DR6 was last written before two reports).
 */
const KUT_DEBUG = 'debug.flat';
const kutDebug = (hostScenario: string): KutRun => ({
  kind: 'kut', file: KUT_DEBUG, label: hostScenario, args: ['--preempt-every', '997', '--host-scenario', hostScenario],
});
/** Case 5 (DR2 instruction breakpoint; DR6 must be exactly B2) and case 6 (DR6.BS kept). */
const KUT_HW_BP = 'Wanted #DB w/ DR6 = 0xffff0ff4:guest-checks-failed';
const KUT_HW_BP_BS = 'Wanted #DB w/ DR6 = 0xffff4ff4:guest-checks-failed';
/** Case 15: the DR1 write watchpoint armed in case 14, before its report. */
const KUT_HW_WP = 'hw watchpoint (test that dr6.BS is not set):guest-checks-failed';

export const SCENARIOS: readonly Scenario[] = [
  scenario('watch-write', 'gdb write watchpoint on a guest global across I/O, CPUID, HLT and preemption exits',
    () => [gdb('scenario-watch-write.gdb', 'counter.elf')], {
      full: pass(),
      none: detect(LOST_DRS, 'missed-hits'),
      'no-guest-dr0-3': detect('guest DR0-3 not loaded: the watchpoint address is not in DR0', 'missed-hits'),
    }),
  scenario('access-hbreak', 'gdb access watchpoint and hardware breakpoint across the same exits',
    () => [gdb('scenario-access-hbreak.gdb', 'counter.elf')], {
      full: pass(),
      none: detect(LOST_DRS, 'missed-hits'),
      'no-guest-dr0-3': detect('guest DR0-3 not loaded', 'missed-hits'),
    }),
  scenario('selfwatch', "the guest's own debugger, without and with gdb attached",
    () => [
      { kind: 'guest', guest: 'selfwatch.elf', args: ['--preempt-every', '1000', '--host-scenario', 'host-watch'] },
      gdb('scenario-selfwatch.gdb', 'selfwatch.elf'),
    ], {
      full: pass(),
      none: detect("the guest's breakpoints stop firing after the first VM exit", 'guest-checks-failed'),
      'no-guest-dr0-3': detect("the guest's DR0-3 take host values", 'guest-checks-failed'),
      'no-guest-dr6': vmxOnly(detect("the guest's DR6 is not switched: its status bits are wrong",
        'guest-checks-failed'), 'SVM keeps the guest DR6 in the VMCB'),
    }),
  scenario('host-isolation', 'host watchpoints keep firing; no guest value reaches the host (monitor leaks)',
    () => [
      { kind: 'stats', guest: 'counter.elf', args: ['--preempt-every', '500', '--host-scenario', 'host-watch'],
        noLeaks: true, hostWatchFires: true },
      gdb('scenario-host-isolation.gdb', 'counter.elf'),
    ], {
      full: pass(),
      none: detect('guest and host debug registers leak into each other', 'leak', 'missed-hits'),
      'no-guest-dr0-3': detect('host DR0-3 stay loaded in the guest', 'leak', 'missed-hits'),
      'no-guest-dr6': vmxOnly(detect('the host DR6 stays loaded in the guest', 'leak'),
        'SVM keeps the guest DR6 in the VMCB'),
      'no-host-dr7-debugctl': detect('host DR7/DEBUGCTL not restored after the exit', 'leak', 'host-watch-disturbed'),
    }),
  scenario('dr6-race', 'VT-x DR6 race: a host debugger steps the VM-entry path (TF guard; determined debugger)',
    (backend) => backend === 'vmx'
      ? [
        gdb('scenario-dr6-race.gdb', 'counter.elf'),
        // The guest's own view of its DR6 (gdb reads the saved guest view; selfwatch reads DR6 itself).
        { kind: 'guest', guest: 'selfwatch.elf', args: ['--preempt-every', '500', '--host-scenario', 'kdb-step'] },
        gdb('scenario-dr6-determined.gdb', 'counter.elf'),
      ]
      : [gdb('scenario-dr6-race.gdb', 'counter.elf')], {
      full: (b) => pass(b === 'vmx'
        ? 'TF guard keeps DR6 intact; the determined debugger still corrupts it (documented limitation)'
        : 'no race on SVM: the guest DR6 is in the VMCB'),
      none: (b) => (b === 'vmx'
        ? detect('no DR6 switch at all: the guest reads the host DR6', 'dr6-corrupted', 'guest-checks-failed')
        : pass('no race on SVM: VMRUN loads the guest DR6 from the VMCB')),
      'no-tf-guard': vmxOnly(detect("the host's single-step trap sets BS in the guest's DR6", 'dr6-corrupted')),
      'no-guest-dr6': vmxOnly(detect("the guest's DR6 is not loaded: the guest reads the host DR6",
        'dr6-corrupted', 'guest-checks-failed')),
    }),
  scenario('svm-clean-bits', 'SVM clean bits: a guest DR7 written through the stub takes effect only when marked dirty',
    () => [gdb('scenario-svm-clean-bits.gdb', 'counter.elf')], {
      full: (b) => pass(b === 'vmx' ? 'VT-x: the guest DR7 is a VMCS field, no cache' : undefined),
      // Only the checks that look at the new DR7 count: a failure elsewhere is not this bug.
      'no-svm-dirty': svmOnly(detect('the VMCB keeps the stale cached DR7', 'stub-dr7-took-effect:leak',
        'vmmctl-dr7-took-effect:leak', 'gdb-watch-after-guest-ran:missed-hits')),
    }),
  scenario('stepping', "stepi through VM exits and a guest interrupt; the guest never sees the debugger's TF",
    () => [gdb('scenario-stepping.gdb', 'stepper.elf')], {
      full: pass(),
      none: pass('stepping uses the guest TF and the #DB intercept, not the DR switch'),
    }),
  {
    ...scenario('kut-debug', "kvm-unit-tests' unmodified debug.flat (25 cases); VT-x: a host debugger steps the entry path, " +
      'then (both) the host uses its own watchpoints',
    (backend) => (backend === 'vmx' ? [kutDebug('kdb-step'), kutDebug('host-watch')] : [kutDebug('host-watch')]), {
      full: pass(),
      none: (b) => (b === 'vmx'
        ? detect('pre-fix VMCS without the debug controls: a VM exit sets DR7 to 400H (SDM 27.5.1) and entry does not ' +
          "reload the guest's, so case 6's breakpoint, armed by case 5's DR7 before its report, never fires", KUT_HW_BP_BS)
        : detect("DR0-3 not switched (the VMCB holds only DR6/DR7): the host thread's watchpoints replace the guest's " +
          "DR1 at its switch-in, so case 15's watchpoint, armed in case 14, never fires", KUT_HW_WP)),
      'no-guest-dr0-3': detect("guest DR0-3 not loaded: after a VM exit DR1 holds a host value, so case 15's watchpoint, " +
        'armed in case 14, never fires', KUT_HW_WP),
      'no-guest-dr6': vmxOnly(detect("guest DR6 not loaded: after a VM exit the guest reads the host's DR6, in which the " +
        "host debugger's steps set BS: case 5's #DB shows BS", KUT_HW_BP), 'SVM keeps the guest DR6 in the VMCB'),
      'no-host-dr7-debugctl': notApplicable('the host DR7/DEBUGCTL part protects the host (host-isolation); ' +
        'the guest DR7 comes from the VMCS/VMCB'),
      'no-tf-guard': vmxOnly(detect("the host debugger's single-step trap after the guest DR6 load sets BS in the " +
        "guest's DR6: case 5's #DB shows BS", KUT_HW_BP)),
      'no-svm-dirty': notApplicable("only the hypervisor's own writes of the VMCB DR6/DR7 need the dirty bit " +
        "(svm-clean-bits); debug.flat's MOV DR go to the registers"),
    }),
    kvmUnitTest: KUT_DEBUG,
  },
];

export const VERIFY_SCENARIOS: readonly string[] = SCENARIOS.map((s) => s.name);

export function findScenario(name: string): Scenario | undefined {
  return SCENARIOS.find((s) => s.name === name);
}
