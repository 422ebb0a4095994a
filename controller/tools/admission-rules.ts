import type { KindName } from '../core/kinds.ts';
import { DIRECTORY_BLOCKS, DURATION_BOUNDS } from '../core/object-rules.ts';
import { formatDuration } from '../core/duration.ts';
import { DiagnosticCode } from '../core/diagnostics.ts';
import { NARROW_LIMITS } from '../core/send-limits.ts';

/**
 * An x-kubernetes-validations rule, as a CRD carries it, with the diagnostic of the validator it
 * mirrors. The messages are the validator's (core/object-rules.ts, core/sms-text.ts) word for word,
 * so that `kubectl apply` and `smsauth validate` say the same thing; a test holds them together on
 * the invalid fixtures.
 */
export interface CelRule {
  rule: string;
  message?: string;
  messageExpression?: string;
  /** Where the error points, relative to the node carrying the rule (`.templateRef`). */
  fieldPath?: string;
  reason?: 'FieldValueInvalid' | 'FieldValueForbidden' | 'FieldValueRequired';
  /** The validator's diagnostic this rule mirrors; not written into the CRD. */
  code: DiagnosticCode;
}

/** Rules by the schema node they sit on: a dotted path from the object's root, `*` for a map's values or a list's items. */
export type RuleTable = Readonly<Record<string, readonly CelRule[]>>;

// The duration schema's pattern: duration() is only called on what it accepts, so a bad duration
// gets the pattern's error alone and never a CEL evaluation error.
const DURATION = "'^([0-9]+(\\\\.[0-9]+)?(ms|s|m|h))+$'";
const PROVIDERS = ['plivo', 'twilio', 'vonage', 'webhook', 'console'] as const;
const DIRECTORY_KINDS = ['ldap', 'entra', 'google', 'static'] as const;

function quote(s: string): string {
  return `'${s.replaceAll('\\', '\\\\').replaceAll("'", "\\'")}'`;
}

/** durationBetween: the CEL condition that a duration expression lies within bounds (its pattern checked apart). */
function durationBetween(expr: string, bounds: { min: number; max: number }): string {
  return `duration(${expr}) >= duration('${formatDuration(bounds.min)}') && duration(${expr}) <= duration('${formatDuration(bounds.max)}')`;
}

/** withinBounds: the rule for a duration node (self is the string) kept between the validator's bounds. */
function withinBounds(field: string, bounds: { min: number; max: number }): CelRule {
  return {
    rule: `!self.matches(${DURATION}) || (${durationBetween('self', bounds)})`,
    messageExpression: `'${field} is ' + self + '; it must be between ${formatDuration(bounds.min)} and ${formatDuration(bounds.max)}'`,
    code: DiagnosticCode.DurationRange,
  };
}

function inBounds(expr: string, bounds: { min: number; max: number }): string {
  return `${expr}.matches(${DURATION}) && ${durationBetween(expr, bounds)}`;
}

// What checkText says of a text that lacks [Code], or has it twice. Its look-alike and unknown
// placeholders need Unicode folding CEL does not have: the admission webhook refuses those.
const OTHER_CODE = '(?i)\\\\{\\\\{?\\\\s*code\\\\s*\\\\}?\\\\}|%code%|\\\\$\\\\{?code\\\\}?|<code>';
const TOKEN = '[\\\\[［][^\\\\[\\\\]［］\\\\n]{0,40}[\\\\]］]';
const TEXT_RULES: readonly CelRule[] = [
  {
    // A text with a bracketed token other than [User] and [Minutes] may hold a look-alike of [Code]:
    // the webhook names it; CEL only refuses a text with no placeholder-like token at all.
    rule: `self.contains('[Code]') || self.findAll('${TOKEN}').exists(t, t != '[User]' && t != '[Minutes]')`,
    messageExpression:
      `self.find('${OTHER_CODE}') != '' ? 'the text has no [Code] placeholder ("' + self.find('${OTHER_CODE}') + '" is not one); write [Code] where the code goes'` +
      ` : 'the text has no [Code] placeholder; add [Code] where the code goes'`,
    code: DiagnosticCode.CodePlaceholderMissing,
  },
  {
    rule: "self.split('[Code]').size() <= 2",
    messageExpression: "'[Code] appears ' + string(self.split('[Code]').size() - 1) + ' times; it must appear exactly once'",
    code: DiagnosticCode.CodePlaceholderRepeated,
  },
];

function gatewayRules(): RuleTable {
  const spec: CelRule[] = [];
  for (const p of PROVIDERS) {
    if (p !== 'console') {
      spec.push({
        rule: `!has(self.provider) || self.provider != '${p}' || has(self.${p})`,
        message: `provider is ${p} but spec.${p} is missing; add the ${p} settings block`,
        fieldPath: '.provider',
        code: DiagnosticCode.ProviderSettingsMismatch,
      });
    }
    spec.push({
      rule: `!has(self.provider) || self.provider == '${p}' || !has(self.${p})`,
      messageExpression: `'spec.${p} does not belong to provider ' + self.provider + '; remove it or change provider to ${p}'`,
      fieldPath: `.${p}`,
      code: DiagnosticCode.ProviderSettingsMismatch,
    });
  }
  const inline = (field: string, advice: string): CelRule => ({
    rule: "!self.matches('^[A-Za-z][A-Za-z0-9+.-]*://[^/?#@]+@')",
    message: `${field} holds a user name or password; credentials are never written inline: ${advice}`,
    code: DiagnosticCode.CredentialInline,
  });
  return {
    '': [
      {
        rule: '!has(self.spec.fallbackGatewayAccountRef) || self.spec.fallbackGatewayAccountRef.name != self.metadata.name',
        message: 'an account cannot be its own fallback; name another SmsGatewayAccount or remove fallbackGatewayAccountRef',
        fieldPath: '.spec.fallbackGatewayAccountRef.name',
        code: DiagnosticCode.FallbackCycle,
      },
    ],
    spec,
    'spec.timeout': [withinBounds('spec.timeout', DURATION_BOUNDS.gatewayTimeout)],
    'spec.credentialCheck.interval': [withinBounds('spec.credentialCheck.interval', DURATION_BOUNDS.credentialCheckInterval)],
    'spec.webhook.url': [inline('spec.webhook.url', 'move them into a Secret')],
    'spec.proxy.url': [inline('spec.proxy.url', 'use spec.proxy.username and spec.proxy.password (Secret references)')],
    'spec.statusCallbackUrl': [inline('spec.statusCallbackUrl', 'move them into a Secret')],
  };
}

function directoryRules(): CelRule[] {
  const given = `[${DIRECTORY_KINDS.map((b) => `has(self.directory.${b}) ? '${b}' : ''`).join(', ')}].filter(b, b != '')`;
  const fits = `{${Object.entries(DIRECTORY_BLOCKS)
    .map(([type, block]) => `'${type}': '${block}'`)
    .join(', ')}}[self.type]`;
  const rules: CelRule[] = [
    {
      rule: `!has(self.directory) || ${given}.size() > 0`,
      messageExpression: `'spec.directory names no directory; give spec.directory.' + ${fits} + ' (type ' + self.type + '), or static for development'`,
      fieldPath: '.directory',
      code: DiagnosticCode.DirectoryTypeMismatch,
    },
    {
      rule: `!has(self.directory) || ${given}.size() <= 1`,
      messageExpression: `'spec.directory gives ' + ${given}.join(' and ') + '; give exactly one'`,
      fieldPath: '.directory',
      code: DiagnosticCode.DirectoryTypeMismatch,
    },
  ];
  for (const block of ['ldap', 'entra', 'google'] as const) {
    rules.push({
      rule: `!has(self.directory) || !has(self.directory.${block}) || ${given}.size() != 1 || ${fits} == '${block}'`,
      messageExpression: `'spec.directory.${block} does not fit type ' + self.type + '; use spec.directory.' + ${fits} + ', or change spec.type'`,
      fieldPath: `.directory.${block}`,
      code: DiagnosticCode.DirectoryTypeMismatch,
    });
  }
  rules.push({
    rule: "self.type != 'ActiveDirectory' || !has(self.directory) || !has(self.directory.ldap) || self.directory.ldap.groupMemberAttribute == 'member'",
    message: 'spec.directory.ldap.groupMemberAttribute is for GenericLDAP; Active Directory nests groups through member, found with its in-chain rule',
    fieldPath: '.directory.ldap.groupMemberAttribute',
    code: DiagnosticCode.DirectoryTypeMismatch,
  });
  // spec.type is required: a store without it gets the schema's error alone, not a rule's.
  return rules.map((r) => ({ ...r, rule: `!has(self.type) || ${r.rule}` }));
}

function storeRules(): RuleTable {
  const plain = "u.lowerAscii().startsWith('ldap://')";
  const cleartext = ' is plain LDAP: the bind password would travel in the clear; use ldaps://, or set startTLS: true (insecure: true allows it, for tests)';
  return {
    spec: [
      {
        rule: "has(self.sms) || !has(self.authenticationTypes) || !('SMS' in self.authenticationTypes)",
        message: 'SMS is enabled but spec.sms is missing; add spec.sms with textMessage or templateRef',
        fieldPath: '.authenticationTypes',
        code: DiagnosticCode.TextSourceMissing,
      },
      ...directoryRules(),
    ],
    'spec.sms': [
      {
        rule: '!has(self.textMessage) || !has(self.templateRef)',
        message: 'give spec.sms.textMessage or spec.sms.templateRef, not both',
        fieldPath: '.templateRef',
        code: DiagnosticCode.TextSourceConflict,
      },
      {
        rule: 'has(self.textMessage) || has(self.templateRef)',
        message: 'spec.sms needs the text: give textMessage (with [Code]) or templateRef',
        code: DiagnosticCode.TextSourceMissing,
      },
    ],
    'spec.sms.code': [
      {
        rule: `!(${inBounds('self.ttl', DURATION_BOUNDS.codeTtl)}) || !self.resendCooldown.matches(${DURATION}) || duration(self.resendCooldown) < duration(self.ttl)`,
        messageExpression: "'spec.sms.code.resendCooldown (' + self.resendCooldown + ') must be shorter than spec.sms.code.ttl (' + self.ttl + ')'",
        fieldPath: '.resendCooldown',
        code: DiagnosticCode.DurationRange,
      },
    ],
    'spec.sms.code.ttl': [withinBounds('spec.sms.code.ttl', DURATION_BOUNDS.codeTtl)],
    'spec.sms.fraudGuard.window': [withinBounds('spec.sms.fraudGuard.window', DURATION_BOUNDS.fraudWindow)],
    'spec.sms.fraudGuard.blockDuration': [withinBounds('spec.sms.fraudGuard.blockDuration', DURATION_BOUNDS.fraudBlock)],
    ...Object.fromEntries(
      [...NARROW_LIMITS, 'global'].map((name) => [
        `spec.sms.limits.${name}.window`,
        [withinBounds(`spec.sms.limits.${name}.window`, DURATION_BOUNDS.limitWindow)],
      ]),
    ),
    'spec.sms.textMessage': TEXT_RULES,
    'spec.directory.ldap': [
      {
        rule: `self.startTLS || self.insecure || !(${plain.replaceAll('u.', 'self.url.')})`,
        messageExpression: `self.url + ${quote(cleartext)}`,
        fieldPath: '.url',
        code: DiagnosticCode.DirectoryInsecure,
      },
      {
        rule: `self.startTLS || self.insecure || !has(self.urls) || !self.urls.exists(u, ${plain})`,
        messageExpression: `self.urls.filter(u, ${plain})[0] + ${quote(cleartext)}`,
        fieldPath: '.urls',
        code: DiagnosticCode.DirectoryInsecure,
      },
    ],
    'spec.directory.cacheTTL': [withinBounds('spec.directory.cacheTTL', DURATION_BOUNDS.directoryCacheTtl)],
    'spec.directory.timeout': [withinBounds('spec.directory.timeout', DURATION_BOUNDS.directoryTimeout)],
  };
}

/**
 * ADMISSION_RULES are the rules of the validator that need nothing but the object itself and that
 * CEL can say, by kind. What CEL cannot say (look-alike placeholders, BCP 47 tags, country-code
 * suggestions) and what needs other objects is the admission webhook's (`smsauth webhook`).
 */
export const ADMISSION_RULES: Readonly<Record<KindName, RuleTable>> = {
  SmsGatewayAccount: gatewayRules(),
  IdentityStore: storeRules(),
  SmsTemplate: { 'spec.text': TEXT_RULES, 'spec.locales.*': TEXT_RULES },
  SecurityRole: { 'spec.lockout.duration': [withinBounds('spec.lockout.duration', DURATION_BOUNDS.lockoutDuration)] },
};

/** crdValidations renders rules as x-kubernetes-validations entries (without the diagnostic code). */
export function crdValidations(rules: readonly CelRule[]): Record<string, string>[] {
  return rules.map((r) => {
    const out: Record<string, string> = { rule: r.rule };
    for (const key of ['message', 'messageExpression', 'fieldPath', 'reason'] as const) if (r[key] !== undefined) out[key] = r[key];
    return out;
  });
}
