// What the console's server sends (controller/runtime/console-hub.ts says the same on its side).

export interface ConsoleObject {
  kind: string;
  namespace: string;
  name: string;
  ready: string;
  reconciling: string;
  stalled: string;
  reason: string;
  message: string;
  observedGeneration: number | null;
  liveGeneration: number | null;
  file: string | null;
  line: number | null;
}

export interface ConsoleMessage {
  seq: number;
  time: string;
  namespace: string;
  store: string | null;
  gateway: string;
  to: string;
  text: string;
  code: string | null;
  reference: string;
}

export interface ConsoleStore {
  namespace: string;
  name: string;
  offered: boolean;
  lastDigitsChallenge: boolean;
  enrollmentEnabled: boolean;
  directory: string | null;
  users: string[];
}

export interface Snapshot {
  revision: string;
  refused: string | null;
  problems: string[];
  objects: ConsoleObject[];
  messages: ConsoleMessage[];
  stores: ConsoleStore[];
  helpdesk: boolean;
}

export interface ObjectDetail {
  object: ConsoleObject;
  source: { file: string; startLine: number; text: string } | null;
  diagnostics: { line: number; column: number; severity: string; code: string; message: string; pointer: string }[];
  conditions: { type: string; status: string; reason: string; message: string; lastTransitionTime: string }[];
}

export interface Verification {
  id: string;
  status: string;
  purpose: string;
  to: string;
  attemptsLeft?: number;
  sendsLeft?: number;
}

export interface UserView {
  user: string;
  enrollments: { type: string; to: string; enrolledAt: string }[];
  lockout: { failures: number; lockedUntil: string | null };
  history: { seq: number; type: string; result: string; time: string; actor: string; role: string | null }[];
  unlock: boolean;
}

export interface ApiError {
  error: { code: string; message: string; field?: string };
}
