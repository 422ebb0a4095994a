// What the test suite needs from the machine, beyond what `npm ci` installs: `npm test` runs this
// first. Missing Debian packages are installed when the user is root with apt-get (one line per
// package); otherwise the run stops before any test with the one command to run.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';

/** Requirement is one thing the tests need from the system, and the Debian package that provides it. */
export interface Requirement {
  /** The Debian package. */
  package: string;
  /** Which tests need it, for the line printed when it is installed. */
  usedBy: string;
  /** A command on PATH, or an absolute path, that shows it is installed. */
  provides: string;
  /** debconf answers given before installing (debconf-set-selections lines), so that the package sets nothing up that the tests do not want. */
  preseed?: readonly string[];
}

/** REQUIREMENTS are the Debian packages the suite uses; kubectl is not one (see KUBECTL_HINT). */
export const REQUIREMENTS: readonly Requirement[] = [
  { package: 'curl', usedBy: 'the README quick start, run as written', provides: 'curl' },
  { package: 'redis-server', usedBy: 'the Redis state store and its replicas', provides: 'redis-server' },
  { package: 'golang-go', usedBy: 'the Helm chart, rendered with Go text/template as Helm does', provides: 'go' },
  {
    package: 'golang-github-masterminds-sprig-dev',
    usedBy: 'the Helm chart (sprig functions)',
    provides: '/usr/share/gocode/src/github.com/Masterminds/sprig',
  },
  { package: 'golang-k8s-sigs-yaml-dev', usedBy: 'the Helm chart (sigs.k8s.io/yaml)', provides: '/usr/share/gocode/src/sigs.k8s.io/yaml' },
  { package: 'golang-github-burntsushi-toml-dev', usedBy: 'the Helm chart (toToml)', provides: '/usr/share/gocode/src/github.com/BurntSushi/toml' },
  { package: 'openssl', usedBy: "the directories' TLS certificates", provides: 'openssl' },
  // No database of its own and no service: the tests start slapd with a configuration of theirs.
  { package: 'slapd', usedBy: 'the GenericLDAP directory (OpenLDAP)', provides: '/usr/sbin/slapd', preseed: ['slapd slapd/no_configuration boolean true'] },
  // Samba's Active Directory domain controller; the tests provision a domain of their own.
  { package: 'samba', usedBy: "the Active Directory directory (Samba's DC)", provides: '/usr/sbin/samba' },
  { package: 'samba-ad-dc', usedBy: "the Active Directory directory (Samba's DC)", provides: '/usr/share/doc/samba-ad-dc' },
  { package: 'samba-ad-provision', usedBy: 'the Active Directory directory (domain provisioning)', provides: '/usr/share/samba/setup' },
  // The console page, driven through playwright-core (never its own browser download).
  { package: 'chromium', usedBy: 'the console page (playwright-core)', provides: '/usr/bin/chromium' },
  { package: 'fonts-dejavu-core', usedBy: "the console page's screenshot (a font to draw text with)", provides: '/usr/share/fonts/truetype/dejavu' },
  { package: 'winbind', usedBy: "the Active Directory directory (Samba's DC)", provides: '/usr/sbin/winbindd' },
];

/**
 * KUBECTL_HINT says how to get kubectl, which the cluster tests run against the in-process API
 * server: Debian's kubernetes-client package is another version and conflicts, so it is never
 * installed from here.
 */
export const KUBECTL_HINT =
  'kubectl (v1.32 or newer) is not on PATH: install it as https://kubernetes.io/docs/tasks/tools/install-kubectl-linux/ says, then run npm test again';

/** Machine is what the decision needs to know about this machine. */
export interface Machine {
  isRoot: boolean;
  hasApt: boolean;
  /** Whether the user asked not to install anything (SMSAUTH_TEST_NO_INSTALL=1). */
  noInstall: boolean;
  has(provides: string): boolean;
}

/** Plan is what to do before the tests: nothing, install packages, or stop with a message. */
export type Plan = { action: 'ready' } | { action: 'install'; packages: Requirement[] } | { action: 'stop'; message: string };

/** planPrerequisites decides, without side effects, what the machine needs before the tests run. */
export function planPrerequisites(machine: Machine, requirements: readonly Requirement[] = REQUIREMENTS): Plan {
  if (!machine.has('kubectl')) return { action: 'stop', message: KUBECTL_HINT };
  const missing = requirements.filter((r) => !machine.has(r.provides));
  if (missing.length === 0) return { action: 'ready' };
  const names = [...new Set(missing.map((r) => r.package))];
  if (machine.isRoot && machine.hasApt && !machine.noInstall) return { action: 'install', packages: missing };
  const sudo = machine.isRoot ? '' : 'sudo ';
  return {
    action: 'stop',
    message: `the tests need Debian packages that are not installed (${names.join(', ')}): run ${sudo}apt-get install -y --no-install-recommends ${names.join(' ')}, then npm test again`,
  };
}

function onPath(command: string): boolean {
  if (command.startsWith('/')) return existsSync(command);
  return (process.env.PATH ?? '').split(delimiter).some((dir) => dir !== '' && existsSync(join(dir, command)));
}

function thisMachine(): Machine {
  return {
    isRoot: process.getuid?.() === 0,
    hasApt: onPath('apt-get'),
    noInstall: process.env.SMSAUTH_TEST_NO_INSTALL === '1',
    has: onPath,
  };
}

/** ensurePrerequisites carries the plan out on this machine and returns the exit status (0: run the tests). */
export function ensurePrerequisites(write: (line: string) => void = (l) => void process.stderr.write(`${l}\n`)): number {
  const plan = planPrerequisites(thisMachine());
  if (plan.action === 'ready') return 0;
  if (plan.action === 'stop') {
    write(`npm test: ${plan.message}`);
    return 1;
  }
  for (const r of plan.packages) write(`npm test: installing ${r.package} (Debian package) for ${r.usedBy}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const packages = [...new Set(plan.packages.map((r) => r.package))];
  const preseed = plan.packages.flatMap((r) => r.preseed ?? []);
  if (preseed.length > 0) {
    const r = spawnSync('debconf-set-selections', [], { input: `${preseed.join('\n')}\n`, encoding: 'utf8' });
    if (r.status !== 0) write(`npm test: debconf-set-selections failed (${r.error?.message ?? `exit ${String(r.status)}`}); installing without its answers`);
  }
  // The package lists of a fresh machine are empty or old: update them once, then install.
  for (const args of [
    ['update', '-qq'],
    ['install', '-y', '-qq', '--no-install-recommends', ...packages],
  ]) {
    const r = spawnSync('apt-get', args, { env, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
    if (r.status !== 0) {
      const said = `${r.stdout ?? ''}${r.stderr ?? ''}`.trim().split('\n').slice(-5).join('\n');
      write(
        `npm test: apt-get ${args[0]} failed (${r.error?.message ?? `exit ${String(r.status)}`}); run apt-get install -y --no-install-recommends ${packages.join(' ')} yourself, then npm test again\n${said}`,
      );
      return 1;
    }
  }
  const after = planPrerequisites({ ...thisMachine(), noInstall: true });
  if (after.action !== 'ready') {
    write(`npm test: ${after.action === 'stop' ? after.message : 'packages are still missing after apt-get install'}`);
    return 1;
  }
  return 0;
}

if (import.meta.main) process.exitCode = ensurePrerequisites();
