import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { KUBECTL_HINT, planPrerequisites, REQUIREMENTS, type Machine } from './prerequisites.ts';

const everything = new Set(['kubectl', ...REQUIREMENTS.map((r) => r.provides)]);
const machine = (over: Partial<Machine> & { without?: string[] } = {}): Machine => {
  const has = new Set([...everything].filter((p) => !(over.without ?? []).includes(p)));
  return { isRoot: true, hasApt: true, noInstall: false, has: (p) => has.has(p), ...over };
};

const plan = suite('planPrerequisites');

const cases: { name: string; machine: Machine; want: ReturnType<typeof planPrerequisites> }[] = [
  { name: 'everything there: run the tests', machine: machine(), want: { action: 'ready' } },
  {
    name: 'root with apt: installs what is missing, one requirement each',
    machine: machine({ without: ['redis-server', 'go'] }),
    want: { action: 'install', packages: REQUIREMENTS.filter((r) => r.package === 'redis-server' || r.package === 'golang-go') },
  },
  {
    name: 'not root: stops, naming the command with sudo',
    machine: machine({ isRoot: false, without: ['redis-server'] }),
    want: {
      action: 'stop',
      message:
        'the tests need Debian packages that are not installed (redis-server): run sudo apt-get install -y --no-install-recommends redis-server, then npm test again',
    },
  },
  {
    name: 'root without apt-get: stops, naming the command',
    machine: machine({ hasApt: false, without: ['curl'] }),
    want: {
      action: 'stop',
      message: 'the tests need Debian packages that are not installed (curl): run apt-get install -y --no-install-recommends curl, then npm test again',
    },
  },
  {
    name: 'SMSAUTH_TEST_NO_INSTALL=1: stops instead of installing',
    machine: machine({ noInstall: true, without: ['/usr/share/gocode/src/sigs.k8s.io/yaml'] }),
    want: {
      action: 'stop',
      message:
        'the tests need Debian packages that are not installed (golang-k8s-sigs-yaml-dev): run apt-get install -y --no-install-recommends golang-k8s-sigs-yaml-dev, then npm test again',
    },
  },
  {
    name: "no kubectl: stops with where to get it (never Debian's conflicting package)",
    machine: machine({ without: ['kubectl', 'curl'] }),
    want: { action: 'stop', message: KUBECTL_HINT },
  },
];
for (const c of cases) plan(c.name, () => assert.equal(planPrerequisites(c.machine), c.want));

plan.run();
