/** The API group of every smsauth kind. */
export const GROUP = 'smsauth.io';
/** The one served version. */
export const VERSION = 'v1alpha1';
/** apiVersion as written in manifests. */
export const API_VERSION = `${GROUP}/${VERSION}`;
/** The category `kubectl get smsauth` lists. */
export const CATEGORY = 'smsauth';

/** The four kinds of smsauth.io/v1alpha1. */
export type KindName = 'SmsGatewayAccount' | 'IdentityStore' | 'SmsTemplate' | 'SecurityRole';

/** A printer column as a CRD declares it (additionalPrinterColumns). */
export interface PrinterColumn {
  name: string;
  type: 'string' | 'integer' | 'number' | 'boolean' | 'date';
  jsonPath: string;
  description: string;
  priority?: number;
}

/** KindInfo is what the loader, the generator and the Kubernetes adapter need to know of a kind. */
export interface KindInfo {
  kind: KindName;
  plural: string;
  singular: string;
  shortName: string;
  schemaFile: string;
  /** Columns shown between NAME and READY by `kubectl get`. */
  columns: readonly PrinterColumn[];
}

/** KINDS lists the kinds in dependency order: what a kind references comes before it. */
export const KINDS: readonly KindInfo[] = [
  {
    kind: 'SmsGatewayAccount',
    plural: 'smsgatewayaccounts',
    singular: 'smsgatewayaccount',
    shortName: 'smsgw',
    schemaFile: 'smsgatewayaccount.schema.json',
    columns: [
      { name: 'Provider', type: 'string', jsonPath: '.spec.provider', description: 'The gateway provider.' },
      { name: 'Default', type: 'boolean', jsonPath: '.spec.default', description: 'Whether this is the namespace default.', priority: 1 },
    ],
  },
  {
    kind: 'SmsTemplate',
    plural: 'smstemplates',
    singular: 'smstemplate',
    shortName: 'smstpl',
    schemaFile: 'smstemplate.schema.json',
    columns: [
      { name: 'Encoding', type: 'string', jsonPath: '.status.locales[?(@.locale=="default")].encoding', description: 'Encoding of the default text.' },
      {
        name: 'Segments',
        type: 'integer',
        jsonPath: '.status.locales[?(@.locale=="default")].segments',
        description: 'Segments of the default text.',
        priority: 1,
      },
    ],
  },
  {
    kind: 'IdentityStore',
    plural: 'identitystores',
    singular: 'identitystore',
    shortName: 'idstore',
    schemaFile: 'identitystore.schema.json',
    columns: [
      { name: 'Gateway', type: 'string', jsonPath: '.status.sms.gatewayAccount', description: 'The linked SmsGatewayAccount.' },
      { name: 'Type', type: 'string', jsonPath: '.spec.type', description: 'The kind of directory.', priority: 1 },
    ],
  },
  {
    kind: 'SecurityRole',
    plural: 'securityroles',
    singular: 'securityrole',
    shortName: 'secrole',
    schemaFile: 'securityrole.schema.json',
    columns: [
      { name: 'Store', type: 'string', jsonPath: '.spec.identityStoreRef.name', description: 'The identity store.' },
      { name: 'Priority', type: 'integer', jsonPath: '.spec.priority', description: 'Priority, 1 is highest.' },
    ],
  },
];

/** kindInfo returns the smsauth kind of that name, or undefined. */
export function kindInfo(kind: string): KindInfo | undefined {
  return KINDS.find((k) => k.kind === kind);
}
