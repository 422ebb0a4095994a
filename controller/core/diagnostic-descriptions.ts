import { DiagnosticCode } from './diagnostics.ts';

/** CODE_DESCRIPTIONS says in one sentence what each diagnostic code means; SARIF rules and docs/diagnostics.md are made from it. */
export const CODE_DESCRIPTIONS: Readonly<Record<DiagnosticCode, string>> = {
  [DiagnosticCode.PathNotFound]: 'A path given on the command line does not exist.',
  [DiagnosticCode.FileUnreadable]: 'A file or folder could not be read (permissions, I/O error).',
  [DiagnosticCode.FileTooLarge]: 'A file is over the size limit (1 MiB by default, --max-file-size) or holds too many documents.',
  [DiagnosticCode.FileEmpty]:
    '(smsauth run) A file holds nothing: what it declared before stays (a file being rewritten is empty for a moment); delete the file to delete its objects.',
  [DiagnosticCode.InvalidEncoding]: 'A file is not UTF-8 text: invalid UTF-8 bytes, UTF-16, or binary content.',
  [DiagnosticCode.YamlSyntax]: "The YAML does not parse, or (warning) reads differently in kubectl's YAML 1.1.",
  [DiagnosticCode.DuplicateKey]: 'A mapping has the same key twice; YAML parsers disagree on which wins, so it is refused.',
  [DiagnosticCode.AliasLimit]: 'Aliases expand beyond the limit (a "billion laughs" alias bomb, or simply too many aliases).',
  [DiagnosticCode.NestingTooDeep]: 'Maps and sequences nest deeper than the limit (64).',
  [DiagnosticCode.CustomTag]: 'An explicit YAML tag other than the core ones (!!str, !!int, ...) is used, such as !!binary or !custom.',
  [DiagnosticCode.NotAnObject]: 'A document is a scalar or a sequence, not a mapping with apiVersion and kind.',
  [DiagnosticCode.MissingKind]: 'An smsauth.io document has no kind.',
  [DiagnosticCode.UnknownApiVersion]: 'An smsauth.io document uses a version other than v1alpha1, or an smsauth kind has no apiVersion or a misspelled group.',
  [DiagnosticCode.UnknownKind]: 'An smsauth.io document has a kind that does not exist.',
  [DiagnosticCode.SkippedKind]: 'A document of another kind (a Deployment, say) was skipped; a note, never a failure.',
  [DiagnosticCode.SecretInvalid]: 'A Secret manifest is malformed: no name, non-string values, or data that is not base64.',
  [DiagnosticCode.SchemaRequired]: 'A required field is missing.',
  [DiagnosticCode.SchemaUnknownField]: 'A field is not part of the schema (often a typo: the message suggests the closest field).',
  [DiagnosticCode.SchemaType]: 'A field has the wrong type (a string where a number is expected, ...).',
  [DiagnosticCode.SchemaEnum]: 'A field is not one of its allowed values.',
  [DiagnosticCode.SchemaPattern]: 'A field does not have the required form (a duration, a country code, a URL, ...).',
  [DiagnosticCode.SchemaRange]: 'A number, text or list is out of its bounds (code length 6 to 10, priority 1 to 99, ...).',
  [DiagnosticCode.SchemaUnique]: 'A list names the same item twice.',
  [DiagnosticCode.CredentialInline]: 'A credential is written inline; credentials are only ever {secretRef: {name, key}}.',
  [DiagnosticCode.NameInvalid]: 'metadata.name is not a DNS-1123 subdomain, or metadata.namespace not a DNS-1123 label.',
  [DiagnosticCode.ProviderSettingsMismatch]: "The settings block of the provider is missing, or another provider's block is present.",
  [DiagnosticCode.TextSourceConflict]: 'An identity store gives both textMessage and templateRef.',
  [DiagnosticCode.TextSourceMissing]: 'An identity store gives neither textMessage nor templateRef (or enables SMS without spec.sms).',
  [DiagnosticCode.CodePlaceholderMissing]: 'A text has no [Code] placeholder.',
  [DiagnosticCode.CodePlaceholderRepeated]: 'A text has [Code] more than once.',
  [DiagnosticCode.PlaceholderMisspelled]:
    'A placeholder is spelled otherwise than [Code], [User] or [Minutes] ([CODE], [code ], look-alike letters, full-width brackets).',
  [DiagnosticCode.PlaceholderUnknown]: 'A text has a bracketed placeholder that does not exist.',
  [DiagnosticCode.TextMultiSegment]: 'A text needs more than one SMS segment with the longest code (a warning; --strict makes it an error).',
  [DiagnosticCode.DurationRange]: 'A duration is out of its bounds (code ttl 30s to 10m, cooldown shorter than ttl, ...).',
  [DiagnosticCode.LimitNeverBinds]:
    'A send limit of spec.sms.limits allows more than the global limit over a window that divides the global one: it can never refuse a send.',
  [DiagnosticCode.CountryUnknown]: 'An allowed country is not an assigned ISO 3166-1 alpha-2 code.',
  [DiagnosticCode.LocaleInvalid]: 'A template locale is not a BCP 47 language tag.',
  [DiagnosticCode.NameDuplicate]: 'Two objects of one kind have the same name in a namespace.',
  [DiagnosticCode.DirectoryTypeMismatch]:
    "An identity store's directory block does not fit its type (ldap for ActiveDirectory and GenericLDAP, entra for MicrosoftEntraID, google for GoogleWorkspace, static for any), or gives more or fewer than one.",
  [DiagnosticCode.DirectoryInsecure]:
    'An LDAP directory over plain ldap:// without StartTLS: refused, or a warning with insecure: true (the bind password travels in the clear).',
  [DiagnosticCode.DirectoryStatic]: 'A static directory: users written in the YAML, for development and tests only (a warning).',
  [DiagnosticCode.ReferenceNotFound]: 'A reference names an object that does not exist in the same namespace.',
  [DiagnosticCode.MemberInvalid]:
    "A security role names a group or container in a form its store's directory never returns (a DN for LDAP, an object id for Entra, an email or an org unit path for Google; no containers in Entra).",
  [DiagnosticCode.ReferenceInvalid]:
    "A reference names an object that exists but is invalid itself (a note: that object's own errors are the cause, and the reference resolves once they are fixed).",
  [DiagnosticCode.FallbackCycle]: 'Fallback gateway accounts refer to each other in a cycle.',
  [DiagnosticCode.DefaultGatewayConflict]: 'More than one gateway account of a namespace is marked default.',
  [DiagnosticCode.TwilioServiceConflict]: 'Two identity stores of a namespace name the same Twilio Verify service SID (spec.twilioCompat.serviceSid).',
  [DiagnosticCode.NoGateway]: 'SMS is enabled but no gateway account is named and the namespace has no default (a warning).',
  [DiagnosticCode.AuthTypeNotEnabled]: 'A security role enforces an authentication type its identity store does not enable.',
  [DiagnosticCode.ChosenByEndUserTooMany]: 'A security role asks users to choose more types than the store enables besides the enforced ones.',
  [DiagnosticCode.PriorityConflict]: 'Two security roles of one identity store have the same priority.',
  [DiagnosticCode.EnrollmentDisabled]: 'A security role needs enrollment (enforced types, chosen types or second factor) but its store disables it.',
};
