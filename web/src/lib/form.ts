import type { FieldError } from '../api/errors';
import type { AppSpec, EnvironmentSpec, Expose, Isolation, MemberRole, MemberSpec, PodSecurity } from '../api/environments';
import { joinQuantity, splitQuantity, type QuantityValue } from './quantity';

export interface AppForm {
  key: number;
  name: string;
  image: string;
  replicas: string;
  port: string;
  env: string;
  cpu: QuantityValue;
  memory: QuantityValue;
  expose: Expose;
}

export interface MemberForm {
  key: number;
  email: string;
  role: MemberRole;
}

/** The create form as typed: strings as entered, empty meaning "from the template". */
export interface EnvironmentForm {
  name: string;
  description: string;
  template: string;
  quotaCpu: QuantityValue;
  quotaMemory: QuantityValue;
  quotaStorage: QuantityValue;
  quotaPods: string;
  defaultCpu: QuantityValue;
  defaultMemory: QuantityValue;
  isolation: Isolation | '';
  podSecurity: PodSecurity | '';
  ttl: string;
  apps: AppForm[];
  members: MemberForm[];
}

export function emptyForm(template = ''): EnvironmentForm {
  return {
    name: '',
    description: '',
    template,
    quotaCpu: { amount: '', unit: '' },
    quotaMemory: { amount: '', unit: 'Gi' },
    quotaStorage: { amount: '', unit: 'Gi' },
    quotaPods: '',
    defaultCpu: { amount: '', unit: 'm' },
    defaultMemory: { amount: '', unit: 'Mi' },
    isolation: '',
    podSecurity: '',
    ttl: '',
    apps: [],
    members: [],
  };
}

let nextKey = 1;
/** Stable React keys for rows, so removing one row keeps the others' focus and state. */
export function rowKey(): number {
  return nextKey++;
}

export function newApp(): AppForm {
  return {
    key: rowKey(),
    name: '',
    image: '',
    replicas: '1',
    port: '',
    env: '',
    cpu: { amount: '', unit: 'm' },
    memory: { amount: '', unit: 'Mi' },
    expose: 'cluster',
  };
}

export function newMember(): MemberForm {
  return { key: rowKey(), email: '', role: 'editor' };
}

/**
 * A whole number as typed, or the text itself when it is not one, so the
 * server's validation (not a silent drop here) tells the person what is wrong.
 */
function integer(text: string): number | undefined {
  const trimmed = text.trim();
  if (trimmed === '') return undefined;
  return /^-?[0-9]+$/.test(trimmed) ? Number(trimmed) : (trimmed as unknown as number);
}

/** `KEY=value` per line; blank lines are skipped, a line without `=` is a key with an empty value. */
export function parseEnv(text: string): Record<string, string> | undefined {
  const env: Record<string, string> = {};
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    const at = line.indexOf('=');
    const key = (at === -1 ? line : line.slice(0, at)).trim();
    env[key] = at === -1 ? '' : line.slice(at + 1);
  }
  return Object.keys(env).length > 0 ? env : undefined;
}

function compact<T extends object>(value: T): T | undefined {
  const entries = Object.entries(value).filter(([, v]) => v !== undefined && v !== '');
  return entries.length > 0 ? (Object.fromEntries(entries) as T) : undefined;
}

function appSpec(app: AppForm): AppSpec {
  const spec: AppSpec = { name: app.name.trim(), image: app.image.trim(), expose: app.expose };
  const replicas = integer(app.replicas);
  if (replicas !== undefined) spec.replicas = replicas;
  const port = integer(app.port);
  if (port !== undefined) spec.port = port;
  const env = parseEnv(app.env);
  if (env) spec.env = env;
  const resources = compact({ cpu: joinQuantity(app.cpu), memory: joinQuantity(app.memory) });
  if (resources) spec.resources = resources;
  return spec;
}

function memberSpec(member: MemberForm): MemberSpec {
  return { email: member.email.trim(), role: member.role };
}

/** The EnvironmentSpec the form asks for; what is left empty is left to the template or policy. */
export function buildSpec(form: EnvironmentForm): EnvironmentSpec {
  const spec: EnvironmentSpec = { name: form.name.trim() };
  if (form.description.trim()) spec.description = form.description.trim();
  if (form.template) spec.template = form.template;
  const quota = compact({
    cpu: joinQuantity(form.quotaCpu),
    memory: joinQuantity(form.quotaMemory),
    storage: joinQuantity(form.quotaStorage),
    pods: integer(form.quotaPods),
  });
  if (quota) spec.quota = quota;
  const limits = compact({ defaultCpu: joinQuantity(form.defaultCpu), defaultMemory: joinQuantity(form.defaultMemory) });
  if (limits) spec.limits = limits;
  if (form.isolation) spec.network = { isolation: form.isolation };
  if (form.podSecurity) spec.podSecurity = form.podSecurity;
  if (form.ttl) spec.ttl = form.ttl;
  if (form.apps.length > 0) spec.apps = form.apps.map(appSpec);
  if (form.members.length > 0) spec.members = form.members.map(memberSpec);
  return spec;
}

/** The DOM id of the input for a field path: `apps[1].resources.cpu` -> `field-apps-1-resources-cpu`. */
export function fieldId(path: string): string {
  const slug = path
    .replace(/\[(\d+)\]/g, '.$1')
    .split('.')
    .filter((part) => part !== '')
    .join('-');
  return `field-${slug || 'form'}`;
}

/**
 * Assigns each error to the nearest input that exists: `apps[0].env.MODE`
 * lands on the env textarea `apps[0].env`, `quota` on the quota group.
 * Errors no input claims come back under the empty key, for a summary.
 */
export function mapFieldErrors(details: FieldError[], knownFields: ReadonlySet<string>): Map<string, string[]> {
  const mapped = new Map<string, string[]>();
  const add = (key: string, message: string) => mapped.set(key, [...(mapped.get(key) ?? []), message]);
  for (const { field, message } of details) {
    let path = field;
    while (path !== '' && !knownFields.has(path)) {
      path = parentPath(path);
    }
    add(path, path === '' && field !== '' ? `${field}: ${message}` : message);
  }
  return mapped;
}

/** `apps[1].resources.cpu` -> `apps[1].resources` -> `apps[1]` -> `apps` -> ''. */
export function parentPath(path: string): string {
  const bracket = path.lastIndexOf('[');
  const dot = path.lastIndexOf('.');
  const cut = Math.max(bracket, dot);
  return cut <= 0 ? '' : path.slice(0, cut);
}

/** Every field path the form renders an input for, in the server's naming. */
export function formFields(form: EnvironmentForm): Set<string> {
  const fields = new Set([
    'name',
    'description',
    'template',
    'quota.cpu',
    'quota.memory',
    'quota.storage',
    'quota.pods',
    'limits.defaultCpu',
    'limits.defaultMemory',
    'network.isolation',
    'podSecurity',
    'ttl',
    'apps',
    'members',
  ]);
  form.apps.forEach((_, i) => {
    for (const f of ['name', 'image', 'replicas', 'port', 'env', 'resources.cpu', 'resources.memory', 'expose']) {
      fields.add(`apps[${i}].${f}`);
    }
  });
  form.members.forEach((_, i) => {
    fields.add(`members[${i}].email`);
    fields.add(`members[${i}].role`);
  });
  return fields;
}

/**
 * A whole number typed into a number field, or why it is not one (for the
 * field's error): an emptied field is never read as 0.
 */
export function wholeNumber(text: string): number | string {
  const trimmed = text.trim();
  if (trimmed === '') return 'is required: enter a whole number';
  if (!/^\d+$/.test(trimmed)) return 'must be a whole number';
  return Number(trimmed);
}

/**
 * The form for an existing environment's spec, every field filled as stored
 * (environments are stored resolved), so that the edit form starts from
 * what is, and an untouched form builds the same spec back.
 */
export function formFromSpec(spec: EnvironmentSpec, name: string): EnvironmentForm {
  const text = (value: string | number | null | undefined) => (value === undefined || value === null ? '' : String(value));
  return {
    name,
    description: spec.description ?? '',
    template: spec.template ?? '',
    quotaCpu: splitQuantity(spec.quota?.cpu ?? undefined, 'cpu'),
    quotaMemory: splitQuantity(spec.quota?.memory ?? undefined, 'bytes'),
    quotaStorage: splitQuantity(spec.quota?.storage ?? undefined, 'bytes'),
    quotaPods: text(spec.quota?.pods),
    defaultCpu: splitQuantity(spec.limits?.defaultCpu ?? undefined, 'cpu'),
    defaultMemory: splitQuantity(spec.limits?.defaultMemory ?? undefined, 'bytes'),
    isolation: spec.network?.isolation ?? '',
    podSecurity: spec.podSecurity ?? '',
    ttl: spec.ttl ?? '',
    apps: (spec.apps ?? []).map((app) => ({
      key: rowKey(),
      name: app.name,
      image: app.image,
      replicas: text(app.replicas),
      port: text(app.port),
      env: Object.entries(app.env ?? {})
        .map(([key, value]) => `${key}=${value}`)
        .join('\n'),
      cpu: splitQuantity(app.resources?.cpu ?? undefined, 'cpu'),
      memory: splitQuantity(app.resources?.memory ?? undefined, 'bytes'),
      expose: app.expose ?? 'none',
    })),
    members: (spec.members ?? []).map((m) => ({ key: rowKey(), email: m.email, role: m.role })),
  };
}

/** The errors of the inputs in `touched` (DOM ids), for live checking while the person types. */
export function touchedOnly(errors: Map<string, string[]>, touched: ReadonlySet<string>): Map<string, string[]> {
  return new Map([...errors].filter(([path]) => path !== '' && touched.has(fieldId(path))));
}
