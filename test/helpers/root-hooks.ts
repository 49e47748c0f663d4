// Mocha root hooks (registered by .mocharc.json's `require`): provide the control plane's binaries
// before the first test when any test needs them, stop the shared control plane after the run, and
// show its components' logs under a failed test that used it. Last of all, the canary scan
// (canary.ts): a secret value in anything the run recorded as exposed fails the "after all" hook.
import { canary } from "./canary.ts";
import { ensureBinaries } from "./control-plane-processes.ts";
import { runningSharedControlPlane, stopSharedControlPlane, takeUsedMark } from "./control-plane.ts";

const NEEDS_CONTROL_PLANE = /control plane/i;

function anyTest(suite: Mocha.Suite, matches: (title: string) => boolean): boolean {
  return suite.tests.some((t) => matches(t.fullTitle())) || suite.suites.some((s) => anyTest(s, matches));
}

/** Hooks mocha runs around the whole run and every test (mocha's root-hook plugin contract). */
export const mochaHooks = {
  async beforeAll(this: Mocha.Context): Promise<void> {
    const root = this.test?.parent;
    if (!root || !anyTest(root, (title) => NEEDS_CONTROL_PLANE.test(title))) return;
    // A cold build takes many minutes: do it here, with progress, not inside some test's timeout.
    this.timeout(0);
    // A failure is not the run's: each test that needs the control plane fails with its message.
    await ensureBinaries().catch(() => undefined);
  },
  beforeEach(this: Mocha.Context): void {
    takeUsedMark();
    canary.setContext(this.currentTest?.fullTitle() ?? "?");
  },
  afterEach(this: Mocha.Context): void {
    const test = this.currentTest;
    canary.setContext(undefined);
    const used = takeUsedMark() || NEEDS_CONTROL_PLANE.test(test?.fullTitle() ?? "");
    if (test?.state !== "failed" || !used) return;
    const controlPlane = runningSharedControlPlane();
    if (controlPlane) process.stderr.write(`\n${controlPlane.logs(100)}\n`);
  },
  async afterAll(this: Mocha.Context): Promise<void> {
    this.timeout(120_000);
    try {
      // Stopping the control plane records its statuses and Events: before the scan.
      await stopSharedControlPlane();
    } finally {
      canary.assertNoLeak((line) => process.stdout.write(`\n  ${line}\n`));
    }
  },
};
