/**
 * The add/edit server form and the config it writes, checked with the config file's own schema
 * (src/common/config.ts), so the console refuses exactly what the daemon would. Pure.
 */
import { ServerConfigSchema } from '../../src/common/config.js';
import { SERVER_NAME_PATTERN, SERVER_NAME_RULE } from '../../src/common/names.js';

export interface ServerForm {
  name: string;
  type: 'stdio' | 'http';
  command: string;
  /** One argument per line. */
  args: string;
  cwd: string;
  /** `KEY=VALUE` per line; a secret as `${secret:NAME}`. */
  env: string;
  url: string;
  /** `Name: value` per line. */
  headers: string;
  enabled: boolean;
  description: string;
}

export type FormErrors = Partial<Record<keyof ServerForm, string>>;

export const EMPTY_FORM: ServerForm = {
  name: '',
  type: 'stdio',
  command: '',
  args: '',
  cwd: '',
  env: '',
  url: '',
  headers: '',
  enabled: true,
  description: '',
};

const str = (v: unknown): string => (typeof v === 'string' ? v : '');
const record = (v: unknown): Record<string, string> => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, string>) : {});

export function formFromConfig(name: string, raw: Record<string, unknown>): ServerForm {
  return {
    name,
    type: raw.type === 'http' ? 'http' : 'stdio',
    command: str(raw.command),
    args: Array.isArray(raw.args) ? raw.args.map(str).join('\n') : '',
    cwd: str(raw.cwd),
    env: Object.entries(record(raw.env))
      .map(([k, v]) => `${k}=${v}`)
      .join('\n'),
    url: str(raw.url),
    headers: Object.entries(record(raw.headers))
      .map(([k, v]) => `${k}: ${v}`)
      .join('\n'),
    enabled: raw.enabled !== false,
    description: str(raw.description),
  };
}

function pairs(text: string, separator: string, field: 'env' | 'headers', errors: FormErrors): Record<string, string> {
  const out: Record<string, string> = {};
  text.split('\n').forEach((line, i) => {
    if (line.trim() === '') return;
    const at = line.indexOf(separator);
    if (at <= 0) {
      errors[field] ??= `line ${i + 1}: write ${field === 'env' ? 'NAME=value' : 'Name: value'}`;
      return;
    }
    out[line.slice(0, at).trim()] = line.slice(at + separator.length).trim();
  });
  return out;
}

/** The form as a config entry, kept on top of `base` (the fields the form does not show stay as written). */
export function configFromForm(form: ServerForm, base: Record<string, unknown> = {}): { config: Record<string, unknown>; errors: FormErrors } {
  const errors: FormErrors = {};
  const config: Record<string, unknown> = { ...base, type: form.type };
  for (const key of ['command', 'args', 'cwd', 'env', 'stopGraceMs', 'url', 'headers']) delete config[key];
  if (form.type === 'stdio') {
    config.command = form.command.trim();
    const args = form.args.split('\n').filter((a) => a.trim() !== '');
    if (args.length > 0) config.args = args;
    if (form.cwd.trim()) config.cwd = form.cwd.trim();
    const env = pairs(form.env, '=', 'env', errors);
    if (Object.keys(env).length > 0) config.env = env;
    if (base.type === 'stdio' && base.stopGraceMs !== undefined) config.stopGraceMs = base.stopGraceMs;
  } else {
    config.url = form.url.trim();
    const headers = pairs(form.headers, ':', 'headers', errors);
    if (Object.keys(headers).length > 0) config.headers = headers;
  }
  if (form.enabled) delete config.enabled;
  else config.enabled = false;
  if (form.description.trim()) config.description = form.description.trim();
  else delete config.description;
  return { config, errors };
}

const FIELD_OF: Record<string, keyof ServerForm> = {
  type: 'type',
  command: 'command',
  args: 'args',
  cwd: 'cwd',
  env: 'env',
  url: 'url',
  headers: 'headers',
  enabled: 'enabled',
  description: 'description',
};

/** Checks a form: the name, the lines, then the config schema; errors by field, in words a person reads. */
export function validateForm(
  form: ServerForm,
  base: Record<string, unknown> = {},
  options: { checkName: boolean } = { checkName: true },
): { config?: Record<string, unknown>; errors: FormErrors } {
  const { config, errors } = configFromForm(form, base);
  if (options.checkName && !SERVER_NAME_PATTERN.test(form.name)) errors.name = SERVER_NAME_RULE;
  const checked = ServerConfigSchema.safeParse(config);
  if (!checked.success) {
    for (const issue of checked.error.issues) {
      const field = FIELD_OF[String(issue.path[0])] ?? (form.type === 'stdio' ? 'command' : 'url');
      const message = issue.code === 'invalid_key' && issue.issues[0] ? issue.issues[0].message : issue.message;
      const where = issue.path.length > 1 ? `${String(issue.path[1])}: ` : '';
      errors[field] ??= `${where}${message.replace(/^Invalid input: /, '')}`;
    }
  }
  if (form.type === 'stdio' && form.command.trim() === '') errors.command = 'give the program to run (for example node or npx)';
  if (form.type === 'http' && form.url.trim() === '') errors.url = "give the server's address (https://…)";
  return Object.keys(errors).length > 0 ? { errors } : { config, errors };
}
