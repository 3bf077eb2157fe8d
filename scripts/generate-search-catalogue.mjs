#!/usr/bin/env node
// Writes test/fixtures/search/catalogue.json: 50 servers × 100 tools shaped like a company desktop's
// (source control, trackers, chat, mail, CRM, payments, databases, clouds, monitoring, HR, ...),
// for the tool-search query set and `npm run bench`. Deterministic: the same file every run.
// Each server has ten kinds of object; each kind has the ten operations below.
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** name, product, what holds the objects, and ten kinds of object ("singular|plural" where English needs help). */
const SERVERS = [
  ['github', 'GitHub', 'repository', ['issue', 'pull request', 'branch', 'commit', 'release', 'workflow run', 'label', 'milestone', 'webhook', 'deploy key']],
  [
    'gitlab',
    'GitLab',
    'project',
    ['merge request', 'pipeline', 'job', 'tag', 'snippet', 'runner', 'environment', 'epic', 'wiki page', 'protected branch|protected branches'],
  ],
  ['jira', 'Jira', 'project', ['issue', 'sprint', 'board', 'epic', 'version', 'component', 'worklog', 'filter', 'attachment', 'issue link']],
  [
    'confluence',
    'Confluence',
    'space',
    ['page', 'blog post', 'comment', 'attachment', 'label', 'template', 'space permission', 'page restriction', 'macro', 'draft'],
  ],
  [
    'slack',
    'Slack',
    'workspace',
    [
      'channel',
      'message',
      'thread reply|thread replies',
      'user group',
      'reminder',
      'pinned item',
      'bookmark',
      'emoji|emoji',
      'scheduled message',
      'canvas|canvases',
    ],
  ],
  [
    'teams',
    'Microsoft Teams',
    'team',
    ['chat', 'channel message', 'meeting', 'tab', 'member', 'call record', 'shift', 'app installation', 'tag', 'announcement'],
  ],
  [
    'gmail',
    'Gmail',
    'mailbox',
    [
      'email',
      'draft',
      'label',
      'filter',
      'thread',
      'attachment',
      'forwarding address|forwarding addresses',
      'vacation responder',
      'signature',
      'contact group',
    ],
  ],
  [
    'calendar',
    'Google Calendar',
    'calendar',
    [
      'event',
      'attendee',
      'reminder',
      'calendar list entry|calendar list entries',
      'free-busy slot',
      'room booking',
      'recurring series|recurring series',
      'invitation',
      'working location',
      'out-of-office block',
    ],
  ],
  [
    'gdrive',
    'Google Drive',
    'drive',
    ['file', 'folder', 'permission', 'revision', 'shared drive', 'comment', 'shortcut', 'label', 'activity|activities', 'trash item'],
  ],
  [
    'notion',
    'Notion',
    'workspace',
    ['page', 'database', 'database row', 'block', 'comment', 'property|properties', 'view', 'template', 'integration', 'mention'],
  ],
  ['linear', 'Linear', 'team', ['issue', 'cycle', 'project', 'roadmap', 'label', 'triage item', 'customer request', 'initiative', 'document', 'sub-issue']],
  ['asana', 'Asana', 'workspace', ['task', 'project', 'section', 'portfolio', 'goal', 'subtask', 'tag', 'story|stories', 'custom field', 'status update']],
  [
    'salesforce',
    'Salesforce',
    'org',
    ['account', 'opportunity|opportunities', 'lead', 'contact', 'case', 'campaign', 'quote', 'price book', 'report', 'dashboard'],
  ],
  [
    'hubspot',
    'HubSpot',
    'portal',
    ['deal', 'company|companies', 'contact', 'ticket', 'marketing email', 'form', 'landing page', 'workflow', 'sequence', 'list'],
  ],
  [
    'zendesk',
    'Zendesk',
    'help desk',
    ['ticket', 'macro', 'help center article', 'satisfaction rating', 'organization', 'trigger', 'SLA policy|SLA policies', 'view', 'ticket field', 'agent'],
  ],
  [
    'intercom',
    'Intercom',
    'workspace',
    ['conversation', 'contact', 'company|companies', 'article', 'tag', 'segment', 'note', 'team inbox|team inboxes', 'message', 'survey'],
  ],
  ['stripe', 'Stripe', 'account', ['charge', 'customer', 'invoice', 'subscription', 'refund', 'payout', 'dispute', 'coupon', 'payment intent', 'product']],
  [
    'quickbooks',
    'QuickBooks',
    'company',
    ['invoice', 'bill', 'vendor', 'expense', 'journal entry|journal entries', 'payment', 'estimate', 'tax rate', 'ledger account', 'purchase order'],
  ],
  [
    'postgres',
    'PostgreSQL',
    'database',
    ['table', 'saved query|saved queries', 'index|indexes', 'view', 'schema', 'role', 'extension', 'slow query|slow queries', 'connection', 'migration'],
  ],
  [
    'mysql',
    'MySQL',
    'server',
    ['table', 'query|queries', 'user', 'index|indexes', 'replica', 'binary log', 'stored procedure', 'trigger', 'event', 'privilege'],
  ],
  [
    'mongodb',
    'MongoDB',
    'cluster',
    [
      'collection',
      'document',
      'index|indexes',
      'aggregation pipeline',
      'database user',
      'backup snapshot',
      'change stream',
      'shard',
      'search index|search indexes',
      'validation rule',
    ],
  ],
  [
    'redis',
    'Redis',
    'instance',
    [
      'key',
      'hash field',
      'stream entry|stream entries',
      'list item',
      'sorted set member',
      'pub/sub channel',
      'keyspace stat',
      'slowlog entry|slowlog entries',
      'client connection',
      'module',
    ],
  ],
  [
    'snowflake',
    'Snowflake',
    'account',
    ['warehouse', 'table', 'stage', 'pipe', 'task', 'query history entry|query history entries', 'role grant', 'share', 'stored procedure', 'resource monitor'],
  ],
  [
    'bigquery',
    'BigQuery',
    'project',
    [
      'dataset',
      'table',
      'job',
      'saved query|saved queries',
      'routine',
      'reservation',
      'scheduled query|scheduled queries',
      'model',
      'row access policy|row access policies',
      'view',
    ],
  ],
  [
    'aws-s3',
    'Amazon S3',
    'account',
    [
      'bucket',
      'object',
      'object version',
      'lifecycle rule',
      'bucket policy|bucket policies',
      'multipart upload',
      'access point',
      'replication rule',
      'inventory report',
      'presigned URL',
    ],
  ],
  [
    'aws-ec2',
    'Amazon EC2',
    'region',
    ['instance', 'security group', 'volume', 'snapshot', 'AMI', 'key pair', 'elastic IP', 'launch template', 'auto scaling group', 'spot request'],
  ],
  [
    'aws-lambda',
    'AWS Lambda',
    'region',
    [
      'function',
      'function version',
      'alias|aliases',
      'layer',
      'event source mapping',
      'invocation',
      'concurrency setting',
      'function URL',
      'log group',
      'destination',
    ],
  ],
  [
    'gcp',
    'Google Cloud',
    'project',
    [
      'compute instance',
      'storage bucket',
      'service account',
      'IAM binding',
      'Cloud Run service',
      'Pub/Sub topic',
      'secret version',
      'firewall rule',
      'log sink',
      'budget',
    ],
  ],
  [
    'azure',
    'Azure',
    'subscription',
    [
      'resource group',
      'virtual machine',
      'storage account',
      'app service',
      'key vault secret',
      'role assignment',
      'network security group',
      'function app',
      'Cosmos container',
      'cost alert',
    ],
  ],
  [
    'kubernetes',
    'Kubernetes',
    'cluster',
    ['pod', 'deployment', 'service', 'config map', 'secret', 'namespace', 'ingress|ingresses', 'cron job', 'persistent volume claim', 'node'],
  ],
  [
    'docker',
    'Docker',
    'host',
    [
      'container',
      'image',
      'volume',
      'network',
      'compose project',
      'registry tag',
      'build cache|build caches',
      'container log',
      'exec session',
      'swarm service',
    ],
  ],
  [
    'terraform',
    'Terraform Cloud',
    'organization',
    ['workspace', 'run', 'state version', 'variable', 'module', 'policy set', 'plan', 'apply|applies', 'provider', 'team access|team accesses'],
  ],
  [
    'datadog',
    'Datadog',
    'organization',
    ['monitor', 'dashboard', 'metric', 'log query|log queries', 'incident', 'SLO', 'synthetic test', 'downtime', 'APM trace', 'notebook'],
  ],
  [
    'pagerduty',
    'PagerDuty',
    'account',
    [
      'incident',
      'on-call schedule',
      'escalation policy|escalation policies',
      'service',
      'alert',
      'maintenance window',
      'override',
      'responder request',
      'postmortem',
      'team',
    ],
  ],
  [
    'sentry',
    'Sentry',
    'organization',
    ['issue', 'event', 'release', 'project', 'alert rule', 'stack trace', 'user feedback|user feedback', 'replay', 'cron monitor', 'performance transaction'],
  ],
  [
    'grafana',
    'Grafana',
    'instance',
    ['dashboard', 'panel', 'data source', 'alert rule', 'folder', 'annotation', 'contact point', 'silence', 'playlist', 'snapshot'],
  ],
  [
    'okta',
    'Okta',
    'org',
    [
      'user',
      'group',
      'application',
      'sign-on policy|sign-on policies',
      'MFA factor',
      'session',
      'system log event',
      'authorization server',
      'group rule',
      'device',
    ],
  ],
  [
    'workday',
    'Workday',
    'tenant',
    [
      'worker',
      'time off request',
      'position',
      'job requisition',
      'compensation plan',
      'expense report',
      'timesheet',
      'org chart',
      'benefit election',
      'performance review',
    ],
  ],
  [
    'greenhouse',
    'Greenhouse',
    'company',
    ['candidate', 'job posting', 'application', 'interview', 'scorecard', 'offer', 'referral', 'hiring stage', 'rejection reason', 'interview kit'],
  ],
  [
    'figma',
    'Figma',
    'team',
    ['design file', 'frame', 'component', 'comment', 'version', 'style', 'prototype', 'variable', 'dev resource', 'library|libraries'],
  ],
  ['miro', 'Miro', 'team', ['board', 'sticky note', 'frame', 'connector', 'card', 'shape', 'board member', 'tag', 'embed', 'mind map node']],
  ['zoom', 'Zoom', 'account', ['meeting', 'webinar', 'recording', 'participant', 'registrant', 'poll', 'breakout room', 'chat message', 'transcript', 'room']],
  [
    'docusign',
    'DocuSign',
    'account',
    [
      'envelope',
      'template',
      'recipient',
      'document',
      'signing link',
      'bulk send batch|bulk send batches',
      'envelope status|envelope statuses',
      'signature',
      'power form',
      'audit trail',
    ],
  ],
  [
    'shopify',
    'Shopify',
    'store',
    ['order', 'product', 'customer', 'inventory level', 'discount code', 'fulfillment', 'collection', 'gift card', 'abandoned checkout', 'theme'],
  ],
  [
    'twilio',
    'Twilio',
    'account',
    [
      'SMS message',
      'phone number',
      'call',
      'voicemail recording',
      'messaging service',
      'verification',
      'conference',
      'queue',
      'WhatsApp template',
      'usage record',
    ],
  ],
  [
    'sendgrid',
    'SendGrid',
    'account',
    [
      'email campaign',
      'contact list',
      'email template',
      'sender identity|sender identities',
      'suppression',
      'bounce',
      'webhook event',
      'segment',
      'API key',
      'email stat',
    ],
  ],
  [
    'mixpanel',
    'Mixpanel',
    'project',
    ['event', 'funnel', 'cohort', 'user profile', 'retention report', 'insight', 'annotation', 'lookup table', 'experiment', 'board'],
  ],
  ['airtable', 'Airtable', 'base', ['record', 'table', 'field', 'view', 'base', 'attachment', 'automation', 'comment', 'interface', 'webhook']],
  [
    'sharepoint',
    'SharePoint',
    'site',
    [
      'document library|document libraries',
      'list item',
      'site page',
      'subsite',
      'file',
      'permission level',
      'content type',
      'news post',
      'term set',
      'file version',
    ],
  ],
  [
    'vault',
    'HashiCorp Vault',
    'cluster',
    ['secret', 'policy|policies', 'token', 'lease', 'auth method', 'secrets engine', 'audit device', 'transit key', 'PKI certificate', 'namespace'],
  ],
];

const plural = (noun) => {
  if (/(s|x|ch|sh)$/.test(noun)) return `${noun}es`;
  if (/[^aeiou]y$/.test(noun)) return `${noun.slice(0, -1)}ies`;
  return `${noun}s`;
};
const snake = (text) =>
  text
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '_')
    .replace(/^_|_$/g, '');
const a = (noun) =>
  /^[aeiouAEIOU]/.test(noun) && !/^(user|URL|uni)/i.test(noun)
    ? `an ${noun}`
    : /^(SMS|SLA|SLO|MFA|AMI|APM|IAM|API|PKI)/.test(noun)
      ? `an ${noun}`
      : `a ${noun}`;
const capital = (text) => text[0].toUpperCase() + text.slice(1);

const str = (description) => ({ type: 'string', description });
const OPERATIONS = [
  {
    name: (o) => `list_${snake(o.plural)}`,
    title: (o) => `List ${o.plural}`,
    description: (o) =>
      `Lists the ${o.plural} in ${a(`${o.product} ${o.container}`)}, newest first. Returns up to \`limit\` items and a cursor for the next page.`,
    params: (o) => ({
      [`${snake(o.container)}_id`]: str(`The ${o.container} to list ${o.plural} of.`),
      limit: { type: 'integer', minimum: 1, maximum: 100 },
      cursor: str('From the previous page.'),
    }),
    required: (o) => [`${snake(o.container)}_id`],
    annotations: { readOnlyHint: true },
  },
  {
    name: (o) => `get_${snake(o.singular)}`,
    title: (o) => `Get ${a(o.singular)}`,
    description: (o) => `Returns one ${o.product} ${o.singular} by its id, with all of its fields.`,
    params: (o) => ({ [`${snake(o.singular)}_id`]: str(`The ${o.singular}'s id.`) }),
    required: (o) => [`${snake(o.singular)}_id`],
    annotations: { readOnlyHint: true },
  },
  {
    name: (o) => `create_${snake(o.singular)}`,
    title: (o) => `Create ${a(o.singular)}`,
    description: (o) => `Creates a new ${o.singular} in ${a(`${o.product} ${o.container}`)} and returns it with its id.`,
    params: (o) => ({
      [`${snake(o.container)}_id`]: str(`Where to create the ${o.singular}.`),
      name: str('Its name or title.'),
      description: str('Optional text.'),
    }),
    required: (o) => [`${snake(o.container)}_id`, 'name'],
    annotations: {},
  },
  {
    name: (o) => `update_${snake(o.singular)}`,
    title: (o) => `Update ${a(o.singular)}`,
    description: (o) => `Changes fields of an existing ${o.product} ${o.singular}; fields left out keep their values.`,
    params: (o) => ({ [`${snake(o.singular)}_id`]: str(`The ${o.singular} to change.`), fields: { type: 'object', description: 'The fields to set.' } }),
    required: (o) => [`${snake(o.singular)}_id`, 'fields'],
    annotations: { idempotentHint: true },
  },
  {
    name: (o) => `delete_${snake(o.singular)}`,
    title: (o) => `Delete ${a(o.singular)}`,
    description: (o) => `Permanently deletes ${a(`${o.product} ${o.singular}`)}. This cannot be undone.`,
    params: (o) => ({ [`${snake(o.singular)}_id`]: str(`The ${o.singular} to delete.`) }),
    required: (o) => [`${snake(o.singular)}_id`],
    annotations: { destructiveHint: true },
  },
  {
    name: (o) => `search_${snake(o.plural)}`,
    title: (o) => `Search ${o.plural}`,
    description: (o) => `Searches ${o.product} ${o.plural} by keywords in their text, with optional filters; best matches first.`,
    params: () => ({
      query: str('Words to look for.'),
      filters: { type: 'object', description: 'Field values the results must have.' },
      limit: { type: 'integer', minimum: 1, maximum: 100 },
    }),
    required: () => ['query'],
    annotations: { readOnlyHint: true },
  },
  {
    name: (o) => `archive_${snake(o.singular)}`,
    title: (o) => `Archive ${a(o.singular)}`,
    description: (o) => `Archives ${a(`${o.product} ${o.singular}`)}: it disappears from lists but is kept and can be restored later.`,
    params: (o) => ({ [`${snake(o.singular)}_id`]: str(`The ${o.singular} to archive.`) }),
    required: (o) => [`${snake(o.singular)}_id`],
    annotations: { idempotentHint: true },
  },
  {
    name: (o) => `restore_${snake(o.singular)}`,
    title: (o) => `Restore ${a(o.singular)}`,
    description: (o) => `Brings back ${a(`${o.product} ${o.singular}`)} that was archived or deleted recently.`,
    params: (o) => ({ [`${snake(o.singular)}_id`]: str(`The ${o.singular} to bring back.`) }),
    required: (o) => [`${snake(o.singular)}_id`],
    annotations: { idempotentHint: true },
  },
  {
    name: (o) => `export_${snake(o.plural)}`,
    title: (o) => `Export ${o.plural}`,
    description: (o) => `Exports the ${o.product} ${o.plural} that match a filter as a CSV or JSON file.`,
    params: () => ({ filters: { type: 'object', description: 'Field values to export.' }, format: { type: 'string', enum: ['csv', 'json'] } }),
    required: () => ['format'],
    annotations: { readOnlyHint: true },
  },
  {
    name: (o) => `get_${snake(o.singular)}_history`,
    title: (o) => `${capital(o.singular)} history`,
    description: (o) => `Returns the change history of ${a(`${o.product} ${o.singular}`)}: who changed which fields, and when.`,
    params: (o) => ({ [`${snake(o.singular)}_id`]: str(`The ${o.singular}.`), since: str('Only changes after this time (ISO 8601).') }),
    required: (o) => [`${snake(o.singular)}_id`],
    annotations: { readOnlyHint: true },
  },
];

const catalogue = {};
for (const [server, product, container, kinds] of SERVERS) {
  if (kinds.length !== 10) throw new Error(`${server} has ${kinds.length} kinds`);
  const tools = [];
  for (const kind of kinds) {
    const [singular, pluralForm] = kind.split('|');
    const o = { product, container, singular, plural: pluralForm ?? plural(singular) };
    for (const op of OPERATIONS) {
      const annotations = { ...op.annotations };
      tools.push({
        name: op.name(o),
        title: op.title(o),
        description: op.description(o),
        inputSchema: { type: 'object', properties: op.params(o), required: op.required(o) },
        ...(Object.keys(annotations).length > 0 ? { annotations } : {}),
      });
    }
  }
  const names = new Set(tools.map((t) => t.name));
  if (names.size !== 100) throw new Error(`${server}: ${names.size} distinct tool names`);
  catalogue[server] = tools;
}
if (Object.keys(catalogue).length !== 50) throw new Error(`${Object.keys(catalogue).length} servers`);
const out = fileURLToPath(new URL('../test/fixtures/search/catalogue.json', import.meta.url));
// One tool per line: small diffs when the generator changes.
const lines = Object.entries(catalogue).map(([server, tools]) => `${JSON.stringify(server)}: [\n${tools.map((t) => JSON.stringify(t)).join(',\n')}\n]`);
writeFileSync(out, `{\n${lines.join(',\n')}\n}\n`);
console.log(`wrote ${out}: ${Object.keys(catalogue).length} servers, ${Object.values(catalogue).flat().length} tools`);
