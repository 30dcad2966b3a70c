import type { ReactNode } from 'react';
import { Link } from 'react-router';
import type { Phase } from '../api/environments';
import { describeError } from '../api/errors';
import { formatRemaining } from '../lib/time';
import { useNow } from '../lib/useResource';

const PHASE_HINT: Record<Phase, string> = {
  Pending: 'Waiting for the controller to pick it up',
  Provisioning: 'Creating the namespace and its objects',
  Ready: 'Everything is in place',
  Degraded: 'Something is wrong: see the conditions',
  Deleting: 'Removing the namespace and everything in it',
};

export function PhaseBadge({ phase }: { phase: Phase | undefined }) {
  const p = phase ?? 'Pending';
  return (
    <span className={`badge phase-${p.toLowerCase()}`} title={PHASE_HINT[p]} data-phase={p}>
      {p}
    </span>
  );
}

export function Countdown({ expiresAt }: { expiresAt: string | null | undefined }) {
  const now = useNow();
  if (!expiresAt) return <span className="muted">no expiry</span>;
  const left = formatRemaining(expiresAt, now);
  const soon = Date.parse(expiresAt) - now < 3600_000;
  return (
    <time dateTime={expiresAt} className={soon ? 'countdown soon' : 'countdown'} title={new Date(expiresAt).toLocaleString()}>
      {left === 'expired' ? 'expired' : `${left} left`}
    </time>
  );
}

export function Loading({ what }: { what: string }) {
  return (
    <p className="loading" role="status" aria-live="polite">
      <span className="spinner" aria-hidden="true" /> Loading {what}…
    </p>
  );
}

export function ErrorNotice({ error, retry }: { error: unknown; retry?: () => void }) {
  if (!error) return null;
  return (
    <div className="notice error" role="alert">
      <p>{describeError(error)}</p>
      {retry && (
        <button type="button" className="secondary" onClick={retry}>
          Try again
        </button>
      )}
    </div>
  );
}

export function Empty({ title, children, action }: { title: string; children?: ReactNode; action?: { to: string; label: string } }) {
  return (
    <div className="empty">
      <h2>{title}</h2>
      {children}
      {action && (
        <Link className="button" to={action.to}>
          {action.label}
        </Link>
      )}
    </div>
  );
}

/** A label, its control and the control's errors, tied together for screen readers. */
export function Field({
  id,
  label,
  hint,
  errors,
  children,
}: {
  id: string;
  label: string;
  hint?: ReactNode;
  errors?: string[] | undefined;
  children: ReactNode;
}) {
  return (
    <div className={errors && errors.length > 0 ? 'field invalid' : 'field'}>
      <label htmlFor={id}>{label}</label>
      {children}
      {hint && (
        <p className="hint" id={`${id}-hint`}>
          {hint}
        </p>
      )}
      <FieldErrors id={id} errors={errors} />
    </div>
  );
}

export function FieldErrors({ id, errors }: { id: string; errors?: string[] | undefined }) {
  if (!errors || errors.length === 0) return null;
  return (
    <p className="field-error" id={`${id}-error`} role="alert">
      {errors.join(' ')}
    </p>
  );
}

/** aria-describedby for a control with an optional hint and errors. */
export function describedBy(id: string, hint: boolean, errors?: string[]): string | undefined {
  const ids = [hint ? `${id}-hint` : '', errors && errors.length > 0 ? `${id}-error` : ''].filter(Boolean);
  return ids.length > 0 ? ids.join(' ') : undefined;
}

export function UsageBar({ label, used, hard, percent }: { label: string; used: string; hard: string; percent: number }) {
  const level = percent >= 90 ? 'high' : percent >= 70 ? 'mid' : 'low';
  return (
    <div className="usage">
      <div className="usage-label">
        <span>{label}</span>
        <span className="muted">
          {used} of {hard}
        </span>
      </div>
      <meter className={`usage-${level}`} min={0} max={100} low={70} high={90} optimum={0} value={percent} aria-label={`${label}: ${percent}% used`}>
        {percent}%
      </meter>
    </div>
  );
}
