import type { DirectorySettings, IdentityStore, SecurityRole, SmsGatewayAccount, SmsObject, SmsTemplate } from '../generated/kinds.ts';
import { countrySuggestion, isCountryCode } from './countries.ts';
import { DiagnosticCode, type Finding } from './diagnostics.ts';
import { formatDuration, parseDuration } from './duration.ts';
import { FRAUD_BLOCK_BOUNDS, FRAUD_WINDOW_BOUNDS } from './fraud-guard.ts';
import { LIMIT_WINDOW_BOUNDS, NARROW_LIMITS, neverBinding, resolveSendLimits } from './send-limits.ts';
import { checkText, sizeTemplateText } from './sms-text.ts';

const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const PROVIDERS = ['plivo', 'twilio', 'vonage', 'webhook', 'console'] as const;

/** Bounds on durations, in milliseconds, that the schema cannot express. */
export const DURATION_BOUNDS = {
  codeTtl: { min: 30_000, max: 600_000 },
  gatewayTimeout: { min: 1000, max: 60_000 },
  credentialCheckInterval: { min: 60_000, max: 7 * 24 * 3_600_000 },
  lockoutDuration: { min: 60_000, max: 24 * 3_600_000 },
  directoryCacheTtl: { min: 0, max: 3_600_000 },
  directoryTimeout: { min: 100, max: 60_000 },
  limitWindow: LIMIT_WINDOW_BOUNDS,
  fraudWindow: FRAUD_WINDOW_BOUNDS,
  fraudBlock: FRAUD_BLOCK_BOUNDS,
} as const;

/** isDnsSubdomain tells whether a name is a DNS-1123 subdomain, as Kubernetes object names are. */
export function isDnsSubdomain(name: string): boolean {
  return name.length <= 253 && DNS1123_SUBDOMAIN.test(name);
}

/** isDnsLabel tells whether a name is a DNS-1123 label, as namespaces are. */
export function isDnsLabel(name: string): boolean {
  return name.length <= 63 && DNS1123_LABEL.test(name);
}

/**
 * checkObject applies the rules that need nothing but the object itself, to an object that passed
 * its schema. An error here makes the object invalid on its own: it is not applied, and its last
 * valid generation keeps serving.
 */
export function checkObject(obj: SmsObject): Finding[] {
  const findings = checkMetadata(obj);
  switch (obj.kind) {
    case 'SmsGatewayAccount':
      return findings.concat(checkGateway(obj));
    case 'IdentityStore':
      return findings.concat(checkStore(obj));
    case 'SmsTemplate':
      return findings.concat(checkTemplate(obj));
    case 'SecurityRole':
      return findings.concat(checkRole(obj));
  }
}

function checkMetadata(obj: SmsObject): Finding[] {
  const out: Finding[] = [];
  const { name, namespace } = obj.metadata;
  if (!isDnsSubdomain(name)) {
    out.push(
      error(
        DiagnosticCode.NameInvalid,
        '/metadata/name',
        `metadata.name ${JSON.stringify(name)} is not a DNS-1123 subdomain: use lowercase letters, digits, '-' and '.', starting and ending with a letter or digit, at most 253 characters`,
      ),
    );
  }
  if (namespace !== undefined && !isDnsLabel(namespace)) {
    out.push(
      error(
        DiagnosticCode.NameInvalid,
        '/metadata/namespace',
        `metadata.namespace ${JSON.stringify(namespace)} is not a DNS-1123 label: use lowercase letters, digits and '-', at most 63 characters`,
      ),
    );
  }
  return out;
}

function checkGateway(gw: SmsGatewayAccount): Finding[] {
  const out: Finding[] = [];
  const spec = gw.spec;
  if (spec.provider !== 'console' && spec[spec.provider] === undefined) {
    out.push(
      error(
        DiagnosticCode.ProviderSettingsMismatch,
        '/spec/provider',
        `provider is ${spec.provider} but spec.${spec.provider} is missing; add the ${spec.provider} settings block`,
      ),
    );
  }
  for (const other of PROVIDERS) {
    if (other !== spec.provider && spec[other] !== undefined) {
      out.push(
        error(
          DiagnosticCode.ProviderSettingsMismatch,
          `/spec/${other}`,
          `spec.${other} does not belong to provider ${spec.provider}; remove it or change provider to ${other}`,
        ),
      );
    }
  }
  out.push(...durationBetween(spec.timeout, '/spec/timeout', 'spec.timeout', DURATION_BOUNDS.gatewayTimeout));
  if (spec.credentialCheck !== undefined) {
    out.push(
      ...durationBetween(
        spec.credentialCheck.interval,
        '/spec/credentialCheck/interval',
        'spec.credentialCheck.interval',
        DURATION_BOUNDS.credentialCheckInterval,
      ),
    );
  }
  // Credentials only ever come from Secrets: not as a URL's user and password either.
  const urls: [string | undefined, string][] = [
    [spec.webhook?.url, '/spec/webhook/url'],
    [spec.proxy?.url, '/spec/proxy/url'],
    [spec.statusCallbackUrl, '/spec/statusCallbackUrl'],
  ];
  for (const [url, pointer] of urls) {
    if (url !== undefined && hasUserinfo(url)) {
      out.push(
        error(
          DiagnosticCode.CredentialInline,
          pointer,
          `${pointer.slice(1).replaceAll('/', '.')} holds a user name or password; credentials are never written inline: ${pointer === '/spec/proxy/url' ? 'use spec.proxy.username and spec.proxy.password (Secret references)' : 'move them into a Secret'}`,
        ),
      );
    }
  }
  if (spec.fallbackGatewayAccountRef?.name === gw.metadata.name) {
    out.push(
      error(
        DiagnosticCode.FallbackCycle,
        '/spec/fallbackGatewayAccountRef/name',
        'an account cannot be its own fallback; name another SmsGatewayAccount or remove fallbackGatewayAccountRef',
      ),
    );
  }
  return out;
}

function checkStore(store: IdentityStore): Finding[] {
  const out: Finding[] = [];
  const spec = store.spec;
  if (spec.directory !== undefined) out.push(...checkDirectory(spec.type, spec.directory));
  // Credentials only ever come from Secrets (and fetch, which posts the events, refuses them in a URL).
  if (spec.events !== undefined && hasUserinfo(spec.events.url)) {
    out.push(
      error(
        DiagnosticCode.CredentialInline,
        '/spec/events/url',
        'spec.events.url holds a user name or password; credentials are never written inline: the receiver authenticates each event by its signature (spec.events.signingSecret)',
      ),
    );
  }
  const sms = spec.sms;
  if (sms === undefined) {
    if (spec.authenticationTypes.includes('SMS')) {
      out.push(
        error(
          DiagnosticCode.TextSourceMissing,
          '/spec/authenticationTypes',
          'SMS is enabled but spec.sms is missing; add spec.sms with textMessage or templateRef',
        ),
      );
    }
    return out;
  }
  if (sms.textMessage !== undefined && sms.templateRef !== undefined) {
    out.push(error(DiagnosticCode.TextSourceConflict, '/spec/sms/templateRef', 'give spec.sms.textMessage or spec.sms.templateRef, not both'));
  } else if (sms.textMessage === undefined && sms.templateRef === undefined) {
    out.push(error(DiagnosticCode.TextSourceMissing, '/spec/sms', 'spec.sms needs the text: give textMessage (with [Code]) or templateRef'));
  }
  const ttlFindings = durationBetween(sms.code.ttl, '/spec/sms/code/ttl', 'spec.sms.code.ttl', DURATION_BOUNDS.codeTtl);
  out.push(...ttlFindings);
  const ttl = parseDuration(sms.code.ttl) ?? 0;
  const cooldown = parseDuration(sms.code.resendCooldown) ?? 0;
  if (ttlFindings.length === 0 && cooldown >= ttl) {
    out.push(
      error(
        DiagnosticCode.DurationRange,
        '/spec/sms/code/resendCooldown',
        `spec.sms.code.resendCooldown (${sms.code.resendCooldown}) must be shorter than spec.sms.code.ttl (${sms.code.ttl})`,
      ),
    );
  }
  out.push(...limitFindings(sms.limits));
  const guard = sms.fraudGuard;
  if (guard?.window !== undefined)
    out.push(...durationBetween(guard.window, '/spec/sms/fraudGuard/window', 'spec.sms.fraudGuard.window', DURATION_BOUNDS.fraudWindow));
  if (guard?.blockDuration !== undefined)
    out.push(...durationBetween(guard.blockDuration, '/spec/sms/fraudGuard/blockDuration', 'spec.sms.fraudGuard.blockDuration', DURATION_BOUNDS.fraudBlock));
  (sms.allowedCountries ?? []).forEach((c, i) => {
    if (!isCountryCode(c)) {
      const meant = countrySuggestion(c);
      out.push(
        error(
          DiagnosticCode.CountryUnknown,
          `/spec/sms/allowedCountries/${i}`,
          `${c} is not an ISO 3166-1 alpha-2 country code${meant !== undefined ? `; did you mean ${meant}?` : ''}`,
        ),
      );
    }
  });
  if (sms.textMessage !== undefined) {
    const textFindings = checkText(sms.textMessage, '/spec/sms/textMessage');
    out.push(...textFindings);
    if (textFindings.length === 0)
      out.push(...segmentWarning(sms.textMessage, sms.code.length, minutesOf(sms.code.ttl), undefined, '/spec/sms/textMessage', 'spec.sms.textMessage'));
  }
  return out;
}

/** DIRECTORY_BLOCKS says which directory block fits which store type (static fits every type). */
export const DIRECTORY_BLOCKS = {
  ActiveDirectory: 'ldap',
  GenericLDAP: 'ldap',
  MicrosoftEntraID: 'entra',
  GoogleWorkspace: 'google',
} as const satisfies Record<IdentityStore['spec']['type'], string>;

function checkDirectory(type: IdentityStore['spec']['type'], dir: DirectorySettings): Finding[] {
  const out: Finding[] = [];
  const given = (['ldap', 'entra', 'google', 'static'] as const).filter((b) => dir[b] !== undefined);
  const fits = DIRECTORY_BLOCKS[type];
  if (given.length === 0) {
    out.push(
      error(
        DiagnosticCode.DirectoryTypeMismatch,
        '/spec/directory',
        `spec.directory names no directory; give spec.directory.${fits} (type ${type}), or static for development`,
      ),
    );
  } else if (given.length > 1) {
    out.push(error(DiagnosticCode.DirectoryTypeMismatch, `/spec/directory/${given[1]!}`, `spec.directory gives ${given.join(' and ')}; give exactly one`));
  } else if (given[0] !== fits && given[0] !== 'static') {
    out.push(
      error(
        DiagnosticCode.DirectoryTypeMismatch,
        `/spec/directory/${given[0]!}`,
        `spec.directory.${given[0]!} does not fit type ${type}; use spec.directory.${fits}, or change spec.type`,
      ),
    );
  }
  const ldap = dir.ldap;
  if (ldap !== undefined) {
    [ldap.url, ...(ldap.urls ?? [])].forEach((url, i) => {
      if (!url.toLowerCase().startsWith('ldap://') || ldap.startTLS) return;
      const pointer = i === 0 ? '/spec/directory/ldap/url' : `/spec/directory/ldap/urls/${i - 1}`;
      out.push(
        ldap.insecure
          ? {
              code: DiagnosticCode.DirectoryInsecure,
              severity: 'warning',
              pointer,
              message: `${url} is plain LDAP without StartTLS (insecure: true): the bind password and every lookup travel in the clear; use ldaps:// or startTLS: true outside tests`,
            }
          : error(
              DiagnosticCode.DirectoryInsecure,
              pointer,
              `${url} is plain LDAP: the bind password would travel in the clear; use ldaps://, or set startTLS: true (insecure: true allows it, for tests)`,
            ),
      );
    });
    if (ldap.groupMemberAttribute !== undefined && ldap.groupMemberAttribute !== 'member' && type === 'ActiveDirectory') {
      out.push(
        error(
          DiagnosticCode.DirectoryTypeMismatch,
          '/spec/directory/ldap/groupMemberAttribute',
          'spec.directory.ldap.groupMemberAttribute is for GenericLDAP; Active Directory nests groups through member, found with its in-chain rule',
        ),
      );
    }
  }
  if (dir.static !== undefined) {
    out.push({
      code: DiagnosticCode.DirectoryStatic,
      severity: 'warning',
      pointer: '/spec/directory/static',
      message:
        'spec.directory.static writes users and their numbers in the YAML: for development and tests only; connect the store to its directory for real users',
    });
  }
  out.push(...durationBetween(dir.cacheTTL, '/spec/directory/cacheTTL', 'spec.directory.cacheTTL', DURATION_BOUNDS.directoryCacheTtl));
  out.push(...durationBetween(dir.timeout, '/spec/directory/timeout', 'spec.directory.timeout', DURATION_BOUNDS.directoryTimeout));
  return out;
}

function checkTemplate(tpl: SmsTemplate): Finding[] {
  const out: Finding[] = [];
  const texts: [string, string, string][] = [['/spec/text', 'spec.text', tpl.spec.text]];
  for (const [locale, text] of Object.entries(tpl.spec.locales ?? {})) {
    const pointer = `/spec/locales/${locale.replace(/~/g, '~0').replace(/\//g, '~1')}`;
    if (!isLocaleTag(locale)) {
      out.push(error(DiagnosticCode.LocaleInvalid, pointer, `locale ${JSON.stringify(locale)} is not a BCP 47 language tag such as fr, de or pt-BR`));
    }
    if (text !== undefined) texts.push([pointer, `spec.locales.${locale}`, text]);
  }
  for (const [pointer, field, text] of texts) {
    const textFindings = checkText(text, pointer);
    out.push(...textFindings);
    if (textFindings.length === 0) out.push(...segmentWarning(text, 10, 10, tpl.spec.originBoundDomain, pointer, field));
  }
  return out;
}

function checkRole(role: SecurityRole): Finding[] {
  return durationBetween(role.spec.lockout.duration, '/spec/lockout/duration', 'spec.lockout.duration', DURATION_BOUNDS.lockoutDuration);
}

/** isLocaleTag tells whether a locale key is a BCP 47 tag with a 2- or 3-letter language. */
export function isLocaleTag(tag: string): boolean {
  if (!/^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$/.test(tag)) return false;
  try {
    return Intl.getCanonicalLocales(tag).length === 1;
  } catch {
    return false;
  }
}

/** minutesOf renders a code lifetime as the whole minutes [Minutes] shows (at least 1). */
export function minutesOf(ttl: string): number {
  return Math.max(1, Math.round((parseDuration(ttl) ?? 0) / 60_000));
}

function segmentWarning(text: string, codeLength: number, minutes: number, domain: string | undefined, pointer: string, field: string): Finding[] {
  const size = sizeTemplateText(text, codeLength, minutes, domain);
  if (size.segments <= 1) return [];
  return [
    {
      code: DiagnosticCode.TextMultiSegment,
      severity: 'warning',
      pointer,
      message: `${field} needs ${size.segments} SMS segments (${size.encoding}, ${size.units} units with a ${codeLength}-digit code): each segment is billed, and some carriers deliver parts out of order; shorten it${size.encoding === 'UCS-2' ? ' or use only GSM-7 characters' : ''}`,
    },
  ];
}

/** limitFindings checks spec.sms.limits: each window within bounds, and no narrower limit that can never bind. */
function limitFindings(limits: NonNullable<IdentityStore['spec']['sms']>['limits']): Finding[] {
  if (limits === undefined) return [];
  const out: Finding[] = [];
  for (const name of [...NARROW_LIMITS, 'global'] as const) {
    const l = limits[name];
    if (l !== undefined)
      out.push(...durationBetween(l.window, `/spec/sms/limits/${name}/window`, `spec.sms.limits.${name}.window`, DURATION_BOUNDS.limitWindow));
  }
  if (out.length > 0) return out;
  for (const n of neverBinding(resolveSendLimits(limits))) out.push(error(DiagnosticCode.LimitNeverBinds, `/spec/sms/limits/${n.name}/count`, n.message));
  return out;
}

function durationBetween(value: string, pointer: string, field: string, bounds: { min: number; max: number }): Finding[] {
  const ms = parseDuration(value);
  if (ms === undefined || (ms >= bounds.min && ms <= bounds.max)) return [];
  return [
    error(DiagnosticCode.DurationRange, pointer, `${field} is ${value}; it must be between ${formatDuration(bounds.min)} and ${formatDuration(bounds.max)}`),
  ];
}

function error(code: DiagnosticCode, pointer: string, message: string): Finding {
  return { code, severity: 'error', pointer, message };
}

/** hasUserinfo tells whether a URL carries a user name or a password (scheme://user:password@host). */
function hasUserinfo(url: string): boolean {
  try {
    const u = new URL(url);
    return u.username !== '' || u.password !== '';
  } catch {
    return false;
  }
}
