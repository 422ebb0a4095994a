/** The causes a field error can have, as Kubernetes' field.ErrorType values. */
export type FieldErrorType =
  | 'FieldValueRequired'
  | 'FieldValueInvalid'
  | 'FieldValueNotSupported'
  | 'FieldValueTypeInvalid'
  | 'FieldValueTooLong'
  | 'FieldValueTooMany'
  | 'FieldValueForbidden'
  | 'FieldValueDuplicate'
  | 'FieldValueNotFound';

/** One validation failure at a field path, the counterpart of apimachinery's field.Error. */
export interface FieldError {
  type: FieldErrorType;
  field: string;
  badValue?: unknown;
  detail?: string;
}

/** One entry of Status.details.causes. */
export interface StatusCause {
  reason?: string;
  message?: string;
  field?: string;
}

/** Status.details as the API server fills it. */
export interface StatusDetails {
  name?: string;
  group?: string;
  kind?: string;
  uid?: string;
  causes?: StatusCause[];
  retryAfterSeconds?: number;
}

/** A meta/v1 Status object, the body of every API error response. */
export interface Status {
  kind: 'Status';
  apiVersion: 'v1';
  metadata: Record<string, never>;
  status: 'Failure' | 'Success';
  message?: string;
  reason?: string;
  details?: StatusDetails;
  code: number;
}

/** ApiError carries a Status to answer with; thrown inside request handling and turned into the HTTP reply. */
export class ApiError extends Error {
  readonly code = 'ERR_KUBE_STATUS';
  readonly status: Status;
  /** Warnings to send with the failure (an admission webhook's, say). */
  readonly warnings: string[];
  constructor(status: Status, warnings: string[] = []) {
    super(status.message ?? status.reason ?? `HTTP ${status.code}`);
    this.status = status;
    this.warnings = warnings;
  }
}

/** A group plus resource (plural) or kind, as in `leases.coordination.k8s.io`. */
export interface GroupName {
  group: string;
  name: string;
}

/** qualified renders a group-qualified resource or kind the way apimachinery's String() does. */
export function qualified(gr: GroupName): string {
  return gr.group === '' ? gr.name : `${gr.name}.${gr.group}`;
}

/** failure builds a Failure Status with the given code, reason, message and details. */
export function failure(code: number, reason: string, message: string, details?: StatusDetails): Status {
  const s: Status = { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code };
  if (details !== undefined) s.details = details;
  return s;
}

/** notFound is the 404 for a missing object, e.g. `secrets "x" not found`. */
export function notFound(gr: GroupName, name: string): ApiError {
  return new ApiError(failure(404, 'NotFound', `${qualified(gr)} "${name}" not found`, { name, group: gr.group, kind: gr.name }));
}

/** alreadyExists is the 409 for a create whose name is taken. */
export function alreadyExists(gr: GroupName, name: string): ApiError {
  return new ApiError(failure(409, 'AlreadyExists', `${qualified(gr)} "${name}" already exists`, { name, group: gr.group, kind: gr.name }));
}

/** OPTIMISTIC_LOCK_MESSAGE is the text the API server gives for a stale resourceVersion. */
export const OPTIMISTIC_LOCK_MESSAGE = 'the object has been modified; please apply your changes to the latest version and try again';

/** conflict is the 409 Conflict for a failed precondition such as a stale resourceVersion. */
export function conflict(gr: GroupName, name: string, message: string): ApiError {
  return new ApiError(
    failure(409, 'Conflict', `Operation cannot be fulfilled on ${qualified(gr)} "${name}": ${message}`, { name, group: gr.group, kind: gr.name }),
  );
}

/** badRequest is the 400 BadRequest with the given message. */
export function badRequest(message: string): ApiError {
  return new ApiError(failure(400, 'BadRequest', message));
}

/** internalError is the 500 InternalError wrapping the given message. */
export function internalError(message: string): ApiError {
  return new ApiError(failure(500, 'InternalError', `Internal error occurred: ${message}`, { causes: [{ message }] }));
}

/** methodNotSupported is the 405 for a verb a resource does not serve. */
export function methodNotSupported(gr: GroupName, verb: string): ApiError {
  return new ApiError(failure(405, 'MethodNotAllowed', `${verb} is not supported on resources of kind "${qualified(gr)}"`, { group: gr.group, kind: gr.name }));
}

/** forbidden is the 403 Forbidden for an action refused by policy (e.g. content in a terminating namespace). */
export function forbidden(gr: GroupName, name: string, message: string): ApiError {
  const what = name === '' ? qualified(gr) : `${qualified(gr)} "${name}"`;
  return new ApiError(failure(403, 'Forbidden', `${what} is forbidden: ${message}`, { name, group: gr.group, kind: gr.name }));
}

/** unsupportedMediaType is the 415 for a body in a format the endpoint does not take. */
export function unsupportedMediaType(contentType: string, accepted: string[]): ApiError {
  return new ApiError(
    failure(415, 'UnsupportedMediaType', `the body of the request was in an unknown format - accepted media types include: ${accepted.join(', ')}`, {
      causes: [{ reason: 'UnexpectedServerResponse', message: contentType }],
    }),
  );
}

/** expired is the 410 Gone with reason Expired that a too-old resourceVersion gets. */
export function expired(message: string): ApiError {
  return new ApiError(failure(410, 'Expired', message));
}

/** tooLargeResourceVersion is the 504 a request gets when it names a resourceVersion the server has not reached. */
export function tooLargeResourceVersion(requested: number, current: number): ApiError {
  return new ApiError(
    failure(504, 'Timeout', `Timeout: Too large resource version: ${requested}, current: ${current}`, {
      causes: [{ reason: 'ResourceVersionTooLarge', message: 'Too large resource version' }],
      retryAfterSeconds: 1,
    }),
  );
}

/** unauthorized is the 401 an unauthenticated request gets. */
export function unauthorized(): ApiError {
  return new ApiError(failure(401, 'Unauthorized', 'Unauthorized'));
}

const TYPE_TEXT: Record<FieldErrorType, string> = {
  FieldValueRequired: 'Required value',
  FieldValueInvalid: 'Invalid value',
  FieldValueNotSupported: 'Unsupported value',
  FieldValueTypeInvalid: 'Invalid value',
  FieldValueTooLong: 'Too long',
  FieldValueTooMany: 'Too many',
  FieldValueForbidden: 'Forbidden',
  FieldValueDuplicate: 'Duplicate value',
  FieldValueNotFound: 'Not found',
};

/** goValue prints a bad value the way field.Error does (%v for scalars, %q for strings). */
export function goValue(value: unknown): string {
  if (value === null || value === undefined) return 'null';
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return JSON.stringify(value);
}

/** fieldErrorBody renders a field error without its path, like field.Error.ErrorBody. */
export function fieldErrorBody(e: FieldError): string {
  let s = TYPE_TEXT[e.type];
  if (e.type !== 'FieldValueRequired' && e.type !== 'FieldValueForbidden' && e.type !== 'FieldValueTooLong') {
    s += `: ${goValue(e.badValue)}`;
  }
  if (e.detail !== undefined && e.detail !== '') s += `: ${e.detail}`;
  return s;
}

/** fieldErrorString renders a field error with its path, like field.Error.Error. */
export function fieldErrorString(e: FieldError): string {
  return `${e.field}: ${fieldErrorBody(e)}`;
}

/** invalid is the 422 Invalid Status for a list of field errors, with one cause per error. */
export function invalid(gk: GroupName, name: string, errors: FieldError[]): ApiError {
  const messages = [...new Set(errors.map(fieldErrorString))];
  const summary = messages.length === 0 ? '' : messages.length === 1 ? `: ${messages[0]}` : `: [${messages.join(', ')}]`;
  return new ApiError(
    failure(422, 'Invalid', `${qualified(gk)} "${name}" is invalid${summary}`, {
      name,
      group: gk.group,
      kind: gk.name,
      causes: errors.map((e) => ({ reason: e.type, message: fieldErrorBody(e), field: e.field })),
    }),
  );
}

/** required builds a FieldValueRequired error. */
export function required(field: string, detail?: string): FieldError {
  const e: FieldError = { type: 'FieldValueRequired', field };
  if (detail !== undefined) e.detail = detail;
  return e;
}

/** invalidValue builds a FieldValueInvalid error. */
export function invalidValue(field: string, badValue: unknown, detail: string): FieldError {
  return { type: 'FieldValueInvalid', field, badValue, detail };
}

/** forbiddenField builds a FieldValueForbidden error. */
export function forbiddenField(field: string, detail: string): FieldError {
  return { type: 'FieldValueForbidden', field, detail };
}

/** notSupported builds a FieldValueNotSupported error listing the accepted values. */
export function notSupported(field: string, badValue: unknown, valid: string[]): FieldError {
  return { type: 'FieldValueNotSupported', field, badValue, detail: `supported values: ${valid.map((v) => JSON.stringify(v)).join(', ')}` };
}
