// What the console's server sends: controller/runtime/console-hub.ts builds these, the page reads them.

/** ConsoleObject is one row of the resources view. */
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
  /** The generation serving (an object whose newest version is invalid keeps an older one). */
  liveGeneration: number | null;
  file: string | null;
  line: number | null;
}

/** ConsoleMessage is one message of the development outbox, its number shown by its last four digits only. */
export interface ConsoleMessage {
  seq: number;
  time: string;
  namespace: string;
  store: string | null;
  gateway: string;
  /** The number masked but for its last four digits. */
  to: string;
  text: string;
  /** The code in the text (the first run of 4 to 10 digits), for the copy button. */
  code: string | null;
  reference: string;
}

/** ConsoleStore is an identity store as the try-it form offers it. */
export interface ConsoleStore {
  namespace: string;
  name: string;
  offered: boolean;
  lastDigitsChallenge: boolean;
  enrollmentEnabled: boolean;
  directory: string | null;
  /** The users of a static directory, to pick from. */
  users: string[];
}

/** Snapshot is everything a page needs when it opens. */
export interface Snapshot {
  revision: string;
  refused: string | null;
  problems: string[];
  objects: ConsoleObject[];
  messages: ConsoleMessage[];
  stores: ConsoleStore[];
  helpdesk: boolean;
}

/** ObjectDetail is one object's page: its document with each diagnostic at its line and column, and its status. */
export interface ObjectDetail {
  object: ConsoleObject;
  source: { file: string; startLine: number; text: string } | null;
  diagnostics: { line: number; column: number; severity: string; code: string; message: string; pointer: string }[];
  conditions: { type: string; status: string; reason: string; message: string; lastTransitionTime: string }[];
}

/** Verification is a verification as the console's actions answer it. */
export interface Verification {
  id: string;
  status: string;
  purpose: string;
  to: string;
  attemptsLeft?: number;
  sendsLeft?: number;
}

/** UserView is a user's page: enrollments, lockout, history, and whether the helpdesk may unlock. */
export interface UserView {
  user: string;
  enrollments: { type: string; to: string; enrolledAt: string }[];
  lockout: { failures: number; lockedUntil: string | null };
  history: { seq: number; type: string; result: string; time: string; actor: string; role: string | null }[];
  unlock: boolean;
}

/** ApiError is the API's error shape. */
export interface ApiError {
  error: { code: string; message: string; field?: string };
}
