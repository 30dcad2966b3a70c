/**
 * Hand-typed from ../shared/api.md for the endpoints the server's OpenAPI
 * document does not describe yet; replaced by schema.d.ts types once it does.
 */
import { request } from './client';
import type { components } from './schema';

export type User = components['schemas']['UserView'];

export type Phase = 'Pending' | 'Provisioning' | 'Ready' | 'Degraded' | 'Deleting';
export type Isolation = 'isolated' | 'open';
export type PodSecurity = 'restricted' | 'baseline';
export type Expose = 'none' | 'cluster' | 'ingress';
export type MemberRole = 'owner' | 'editor' | 'viewer';

export interface Quota {
  cpu?: string;
  memory?: string;
  storage?: string;
  pods?: number;
}

export interface AppSpec {
  name?: string;
  image?: string;
  replicas?: number;
  port?: number;
  env?: Record<string, string>;
  resources?: { cpu?: string; memory?: string };
  expose?: Expose;
}

export interface MemberSpec {
  email?: string;
  role?: MemberRole;
}

export interface EnvironmentSpec {
  name?: string;
  description?: string;
  template?: string;
  quota?: Quota;
  limits?: { defaultCpu?: string; defaultMemory?: string };
  network?: { isolation?: Isolation };
  podSecurity?: PodSecurity;
  ttl?: string;
  apps?: AppSpec[];
  members?: MemberSpec[];
}

export interface Condition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
  lastTransitionTime?: string;
}

export interface EnvironmentStatus {
  phase?: Phase;
  conditions?: Condition[];
  quota?: { hard?: Record<string, string | number>; used?: Record<string, string | number> };
  expiresAt?: string | null;
  observedGeneration?: number;
}

export interface Environment {
  name: string;
  namespace: string;
  description?: string;
  owner: string;
  role: MemberRole;
  spec: EnvironmentSpec;
  status?: EnvironmentStatus;
  createdAt: string;
  /** The object's resource version: orders a `GET` answer against live events. */
  resourceVersion?: string | null;
}

export interface Preview {
  yaml: string;
  objects?: unknown[];
  summary: string[];
  warnings: string[];
}

export interface Template {
  name: string;
  description: string;
  spec: EnvironmentSpec;
}

export interface Policy {
  registration: 'open' | 'closed';
  approval: 'never' | 'overLimit' | 'always';
  maxEnvironmentsPerUser: number;
  maxQuota: Quota;
  defaultTtl: string;
  maxTtl: string;
}

export type RequestState = 'pending' | 'approved' | 'rejected';

/** A pending request: the contract names its purpose, not its fields, so all but `id` are optional. */
export interface ApprovalRequest {
  id: string;
  state?: RequestState;
  requester?: string;
  spec?: EnvironmentSpec;
  environment?: string;
  /** The admin's reason, once rejected. */
  reason?: string;
  /** Why it needs an admin: each names the field over the policy. */
  reasons?: string[];
  createdAt?: string;
}

export interface AuditEntry {
  at: string;
  actor: string;
  action: string;
  target: string;
  outcome: string;
  details?: unknown;
}

/** Loosely typed: the contract lists what workloads hold, not their shape. */
export interface Workloads {
  deployments?: { name: string; replicas?: number; readyReplicas?: number; availableReplicas?: number }[];
  pods?: components['schemas']['WorkloadPod'][];
  services?: { name: string; type?: string; ports?: unknown[]; clusterIP?: string }[];
  ingresses?: { name: string; hosts?: string[]; host?: string }[];
}

export type KubeEvent = components['schemas']['EventView'];

interface Items<T> {
  items: T[];
}

const env = (name: string) => `/api/v1/environments/${encodeURIComponent(name)}`;

export const environments = {
  list: (all: boolean, signal?: AbortSignal) =>
    request<Items<Environment>>('GET', `/api/v1/environments${all ? '?all=true' : ''}`, undefined, signal).then((r) => r.items),
  /** The live view (Server-Sent Events) of the list, or of one environment. */
  watchUrl: (name?: string, all = false) =>
    name ? `${env(name)}?watch=true` : `/api/v1/environments?watch=true${all ? '&all=true' : ''}`,
  get: (name: string, signal?: AbortSignal) => request<Environment>('GET', env(name), undefined, signal),
  create: (spec: EnvironmentSpec) =>
    request<Environment | { request: ApprovalRequest }>('POST', '/api/v1/environments', spec),
  preview: (spec: EnvironmentSpec, signal?: AbortSignal) =>
    request<Preview>('POST', '/api/v1/environments/preview', spec, signal),
  remove: (name: string) => request<unknown>('DELETE', env(name)),
  renew: (name: string, ttl: string) => request<Environment>('POST', `${env(name)}/renew`, { ttl }),
  events: (name: string, signal?: AbortSignal) =>
    request<Items<KubeEvent>>('GET', `${env(name)}/events`, undefined, signal).then((r) => r.items),
  workloads: (name: string, signal?: AbortSignal) => request<Workloads>('GET', `${env(name)}/workloads`, undefined, signal),
  setMember: (name: string, email: string, role: MemberRole) =>
    request<unknown>('PUT', `${env(name)}/members/${encodeURIComponent(email)}`, { role }),
  removeMember: (name: string, email: string) =>
    request<unknown>('DELETE', `${env(name)}/members/${encodeURIComponent(email)}`),
  kubeconfigUrl: (name: string) => `${env(name)}/kubeconfig`,
};

export function isApprovalAnswer(answer: Environment | { request: ApprovalRequest }): answer is { request: ApprovalRequest } {
  return 'request' in answer && !('status' in answer);
}

export const templates = {
  list: (signal?: AbortSignal) => request<Items<Template>>('GET', '/api/v1/templates', undefined, signal).then((r) => r.items),
  put: (name: string, body: { description: string; spec: EnvironmentSpec }) =>
    request<Template>('PUT', `/api/v1/admin/templates/${encodeURIComponent(name)}`, body),
  remove: (name: string) => request<unknown>('DELETE', `/api/v1/admin/templates/${encodeURIComponent(name)}`),
};

export const admin = {
  policy: (signal?: AbortSignal) => request<Policy>('GET', '/api/v1/admin/policy', undefined, signal),
  putPolicy: (policy: Policy) => request<Policy>('PUT', '/api/v1/admin/policy', policy),
  requests: (state: RequestState, signal?: AbortSignal) =>
    request<Items<ApprovalRequest>>('GET', `/api/v1/admin/requests?state=${state}`, undefined, signal).then((r) => r.items),
  approve: (id: string) => request<unknown>('POST', `/api/v1/admin/requests/${encodeURIComponent(id)}/approve`),
  reject: (id: string, reason: string) =>
    request<unknown>('POST', `/api/v1/admin/requests/${encodeURIComponent(id)}/reject`, { reason }),
  audit: (filters: { actor?: string; environment?: string; since?: string }, signal?: AbortSignal) => {
    const query = new URLSearchParams();
    for (const [key, value] of Object.entries(filters)) if (value) query.set(key, value);
    const qs = query.toString();
    return request<Items<AuditEntry>>('GET', `/api/v1/admin/audit${qs ? `?${qs}` : ''}`, undefined, signal).then(
      (r) => r.items,
    );
  },
};
