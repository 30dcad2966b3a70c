import { api, unwrap } from '../api/client';
import type { components } from '../api/schema';
import type { EnvironmentSpec } from '../api/environments';
import { Empty, ErrorNotice, Loading } from '../components/ui';
import { formatDate } from '../lib/time';
import { usePageTitle, useResource } from '../lib/useResource';

type RequestView = components['schemas']['RequestView'];

const STATE_LABEL: Record<string, string> = {
  pending: 'Waiting for an admin',
  approved: 'Approved',
  rejected: 'Rejected',
};

/** The spec asked, one phrase per bound set (the contract's `spec` is the environment spec as sent). */
export function describeSpec(spec: EnvironmentSpec): string[] {
  const out: string[] = [];
  if (spec.template) out.push(`template ${spec.template}`);
  const q = spec.quota ?? {};
  if (q.cpu) out.push(`CPU ${q.cpu}`);
  if (q.memory) out.push(`memory ${q.memory}`);
  if (q.storage) out.push(`storage ${q.storage}`);
  if (q.pods !== undefined && q.pods !== null) out.push(`${q.pods} pods`);
  if (spec.ttl) out.push(`kept for ${spec.ttl}`);
  if (spec.apps?.length) out.push(`${spec.apps.length} app${spec.apps.length === 1 ? '' : 's'}`);
  return out;
}

/** The caller's own requests: what was asked, what was decided, and the admin's reason. */
export function RequestsPage() {
  usePageTitle('My requests');
  const list = useResource(
    (signal) => unwrap(api.GET('/api/v1/requests', { signal })).then((r) => r.items),
    'my-requests',
  );
  return (
    <section>
      <h1>My requests</h1>
      <p className="muted">Environments and changes that needed an admin’s approval, newest first.</p>
      {list.loading && !list.data ? (
        <Loading what="your requests" />
      ) : list.error && !list.data ? (
        <ErrorNotice error={list.error} retry={list.reload} />
      ) : !list.data?.length ? (
        <Empty title="No requests" action={{ to: '/environments/new', label: 'New environment' }}>
          <p>When the policy asks an admin to approve something you create or change, it is listed here with the decision.</p>
        </Empty>
      ) : (
        <ul className="plain requests">
          {list.data.map((r) => (
            <RequestCard key={r.id} request={r} />
          ))}
        </ul>
      )}
    </section>
  );
}

function RequestCard({ request: r }: { request: RequestView }) {
  const asked = describeSpec(r.spec as EnvironmentSpec);
  return (
    <li className="card" data-request={r.id}>
      <h2>
        {r.kind === 'update' ? 'Change of' : 'New environment'} {r.environment}{' '}
        <span className={`badge request-${r.state}`} data-state={r.state}>
          {STATE_LABEL[r.state] ?? r.state}
        </span>
      </h2>
      <p className="muted">
        Asked {formatDate(r.createdAt)}
        {r.decidedAt ? ` · decided ${formatDate(r.decidedAt)}` : ''}
      </p>
      {asked.length > 0 && <p>Asked for: {asked.join(', ')}.</p>}
      {r.reasons.length > 0 && (
        <>
          <h3>Why it needs an admin</h3>
          <ul>
            {r.reasons.map((why) => (
              <li key={why}>{why}</li>
            ))}
          </ul>
        </>
      )}
      {r.state === 'rejected' && (
        <p className="notice error">
          <strong>The admin’s reason:</strong> {r.reason || 'none given.'}
        </p>
      )}
    </li>
  );
}
