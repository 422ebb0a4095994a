/** ConditionType lists the condition types smsauth sets; Ready summarises the others. */
export const ConditionType = {
  Ready: 'Ready',
  CredentialsResolved: 'CredentialsResolved',
  InUse: 'InUse',
  GatewayLinked: 'GatewayLinked',
  TemplateValid: 'TemplateValid',
  MultiSegment: 'MultiSegment',
  DirectoryConnected: 'DirectoryConnected',
  EventsConfigured: 'EventsConfigured',
  TwilioCompatConfigured: 'TwilioCompatConfigured',
  /** kstatus: True while the controller works on the object or retries (InProgress). */
  Reconciling: 'Reconciling',
  /** kstatus: True when the object cannot get further without a change by a person (Failed). */
  Stalled: 'Stalled',
} as const;
/** A condition type. */
export type ConditionType = (typeof ConditionType)[keyof typeof ConditionType];

/**
 * Reason holds every condition reason, CamelCase constants as Kubernetes conventions ask.
 * docs/conditions.md explains each one; a test keeps the two in step.
 */
export const Reason = {
  // Any kind.
  Reconciled: 'Reconciled',
  InvalidSpec: 'InvalidSpec',
  // SmsGatewayAccount.
  SecretsResolved: 'SecretsResolved',
  NoCredentialsNeeded: 'NoCredentialsNeeded',
  SecretNotFound: 'SecretNotFound',
  SecretKeyNotFound: 'SecretKeyNotFound',
  CredentialsRejected: 'CredentialsRejected',
  FallbackNotFound: 'FallbackNotFound',
  FallbackNotReady: 'FallbackNotReady',
  FallbackCycle: 'FallbackCycle',
  DefaultConflict: 'DefaultConflict',
  LinkedByIdentityStores: 'LinkedByIdentityStores',
  NotLinked: 'NotLinked',
  DeletionBlocked: 'DeletionBlocked',
  // IdentityStore.
  SmsOffered: 'SmsOffered',
  SmsNotEnabled: 'SmsNotEnabled',
  EnrollmentDisabled: 'EnrollmentDisabled',
  GatewayAccountLinked: 'GatewayAccountLinked',
  NoGatewayAccount: 'NoGatewayAccount',
  GatewayAccountNotFound: 'GatewayAccountNotFound',
  GatewayAccountNotReady: 'GatewayAccountNotReady',
  TextValid: 'TextValid',
  TemplateNotFound: 'TemplateNotFound',
  TemplateNotReady: 'TemplateNotReady',
  CallerVouches: 'CallerVouches',
  StaticDirectory: 'StaticDirectory',
  DirectoryNotChecked: 'DirectoryNotChecked',
  Connected: 'Connected',
  DirectorySecretNotFound: 'DirectorySecretNotFound',
  DirectoryCredentialsRejected: 'DirectoryCredentialsRejected',
  DirectoryCertificateUntrusted: 'DirectoryCertificateUntrusted',
  DirectorySearchFailed: 'DirectorySearchFailed',
  DirectoryUnreachable: 'DirectoryUnreachable',
  EventsEndpointSet: 'EventsEndpointSet',
  EventsSecretNotFound: 'EventsSecretNotFound',
  TwilioServiceServed: 'TwilioServiceServed',
  TwilioTokenNotFound: 'TwilioTokenNotFound',
  // SmsTemplate.
  SingleSegment: 'SingleSegment',
  TextExceedsOneSegment: 'TextExceedsOneSegment',
  // SecurityRole.
  Disabled: 'Disabled',
  IdentityStoreNotFound: 'IdentityStoreNotFound',
  AuthTypeNotEnabled: 'AuthTypeNotEnabled',
  ChosenByEndUserTooMany: 'ChosenByEndUserTooMany',
  PriorityConflict: 'PriorityConflict',
  MemberInvalid: 'MemberInvalid',
} as const;
/** A condition reason. */
export type Reason = (typeof Reason)[keyof typeof Reason];
