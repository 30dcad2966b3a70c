import { useEffect, useMemo, useRef, useState, type FormEvent } from 'react';
import { Link } from 'react-router';
import { environments, isApprovalAnswer, type Environment, type EnvironmentSpec, type Preview } from '../api/environments';
import { ApiError } from '../api/errors';
import { approvalWarnings, changesBounds, describeChanges, mergePatch } from '../lib/changes';
import { buildSpec, fieldId, formFields, formFromSpec, mapFieldErrors, touchedOnly, type EnvironmentForm } from '../lib/form';
import { useDebounced } from '../lib/useResource';
import { EnvironmentFormFields } from './EnvironmentFormFields';
import { ErrorNotice } from './ui';

const PREVIEW_DEBOUNCE_MS = 400;

/**
 * The spec the edit form asks for: the stored spec with the form's fields
 * over it. Settings the form leaves empty keep their stored value (an
 * existing environment has every setting); fields the form does not show
 * (ephemeral storage, object counts, exceptions) are kept as they are.
 */
export function editedSpec(base: EnvironmentSpec, form: EnvironmentForm): EnvironmentSpec {
  const built = buildSpec(form);
  const after: EnvironmentSpec = { ...base };
  if (built.description) after.description = built.description;
  else delete after.description;
  if (built.quota) after.quota = { ...base.quota, ...built.quota };
  if (built.limits) after.limits = { ...base.limits, ...built.limits };
  if (built.network) after.network = { ...base.network, ...built.network };
  if (built.podSecurity) after.podSecurity = built.podSecurity;
  if (built.ttl) after.ttl = built.ttl;
  if (built.apps || base.apps?.length) after.apps = built.apps ?? [];
  if (built.members || base.members?.length) after.members = built.members ?? [];
  return after;
}

/** The state an edit starts from: the spec and the generation the change is based on. */
interface Base {
  spec: EnvironmentSpec;
  generation: number;
}

/**
 * Changing an existing environment: the form starts from the stored spec,
 * the preview says what changes and whether an admin must approve it, and
 * the save is a merge patch conditional on the generation it started from.
 */
export function EditEnvironment({ env, onDone }: { env: Environment; onDone: (message: string) => void }) {
  const [base, setBase] = useState<Base>(() => ({ spec: env.spec, generation: env.generation ?? 0 }));
  const [form, setForm] = useState<EnvironmentForm>(() => formFromSpec(env.spec, env.name));
  const [touched, setTouched] = useState<ReadonlySet<string>>(() => new Set());
  // Typed into or left: from then on the field's live errors show.
  const touch = (id: string) => {
    if (id && !touched.has(id)) setTouched(new Set([...touched, id]));
  };
  const [submitError, setSubmitError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const [preview, setPreview] = useState<Preview | null>(null);
  const [previewError, setPreviewError] = useState<unknown>(null);
  const staleRef = useRef<HTMLDivElement>(null);

  const after = useMemo(() => editedSpec(base.spec, form), [base.spec, form]);
  const patch = useMemo(() => mergePatch(base.spec, after), [base.spec, after]);
  const changes = useMemo(() => describeChanges(base.spec, after), [base.spec, after]);
  const changed = Object.keys(patch).length > 0;
  const afterJson = useDebounced(JSON.stringify(after), PREVIEW_DEBOUNCE_MS);

  useEffect(() => {
    const controller = new AbortController();
    environments
      .preview(JSON.parse(afterJson) as EnvironmentSpec, controller.signal)
      .then((p) => {
        setPreview(p);
        setPreviewError(null);
      })
      .catch((err: unknown) => {
        if (!controller.signal.aborted) setPreviewError(err);
      });
    return () => controller.abort();
  }, [afterJson]);

  const stale = submitError instanceof ApiError && submitError.status === 412;
  useEffect(() => {
    if (stale) staleRef.current?.focus();
  }, [stale]);

  const known = useMemo(() => formFields(form), [form]);
  const fieldErrors =
    submitError instanceof ApiError && submitError.details.length > 0
      ? mapFieldErrors(submitError.details, known)
      : touchedOnly(mapFieldErrors(previewError instanceof ApiError ? previewError.details : [], known), touched);
  // Only a change of bounds can wait for an admin; apps, members and the description never do.
  const approval = changesBounds(patch) && preview && !previewError ? approvalWarnings(preview.warnings) : [];
  // The environment moved on since the form opened (live view): said before saving, not only after.
  const movedOn = (env.generation ?? 0) !== base.generation;

  const reload = () => {
    setBase({ spec: env.spec, generation: env.generation ?? 0 });
    setForm(formFromSpec(env.spec, env.name));
    setTouched(new Set());
    setSubmitError(null);
    document.getElementById('edit-heading')?.focus();
  };

  const save = async (e: FormEvent) => {
    e.preventDefault();
    if (!changed) return;
    setBusy(true);
    setSubmitError(null);
    try {
      // A merge patch of the spec: its fields, or null to remove one.
      const answer = await environments.patch(env.name, base.generation, patch as EnvironmentSpec);
      onDone(
        isApprovalAnswer(answer)
          ? 'Your change needs an admin’s approval: it was sent as a request (see My requests) and applies once approved.'
          : 'Saved: the controller is applying your change.',
      );
    } catch (err) {
      setSubmitError(err);
      if (err instanceof ApiError && err.details.length > 0) {
        const first = mapFieldErrors(err.details, known).keys().next().value;
        if (first) document.getElementById(fieldId(first))?.focus();
      }
    } finally {
      setBusy(false);
    }
  };

  return (
    <form
      className="edit"
      aria-labelledby="edit-heading"
      noValidate
      onSubmit={(e) => void save(e)}
      onBlur={(e) => touch(e.target.id)}
      onChange={(e) => touch((e.target as HTMLElement).id)}
    >
      <h2 id="edit-heading" tabIndex={-1}>
        Change {env.name}
      </h2>
      {stale ? (
        <div className="notice error" role="alert" tabIndex={-1} ref={staleRef} data-testid="edit-stale">
          <p>Someone else changed this environment after you started editing, so your change was not saved.</p>
          <p>Reload to start again from the latest version; your edits here will be replaced.</p>
          <button type="button" className="secondary" onClick={reload}>
            Reload the latest version
          </button>
        </div>
      ) : movedOn ? (
        <div className="notice" role="status">
          <p>This environment changed since you started editing. Saving will fail; reload to edit the latest version.</p>
          <button type="button" className="secondary" onClick={reload}>
            Reload the latest version
          </button>
        </div>
      ) : null}
      <div className="split">
        <div>
          <EnvironmentFormFields form={form} onChange={setForm} templates={[]} errors={fieldErrors} editing />
        </div>
        <aside className="preview" aria-label="What changes">
          <h3>What changes</h3>
          {changes.length === 0 ? (
            <p className="muted">Nothing yet: change a field on the left.</p>
          ) : (
            <ul className="summary" data-testid="edit-changes">
              {changes.map((line) => (
                <li key={line}>{line}</li>
              ))}
            </ul>
          )}
          {approval.length > 0 && (
            <div className="notice" id="edit-approval">
              <p>
                <strong>Needs an admin’s approval.</strong> Saving sends a request; nothing changes until it is approved.
              </p>
              <ul>
                {approval.map((w) => (
                  <li key={w}>{w}</li>
                ))}
              </ul>
            </div>
          )}
          {previewError && !(previewError instanceof ApiError && previewError.code === 'validation_failed') ? (
            <ErrorNotice error={previewError} />
          ) : null}
        </aside>
      </div>
      {!stale && <ErrorNotice error={submitError instanceof ApiError && submitError.details.length > 0 ? null : submitError} />}
      <div className="actions">
        <button type="submit" disabled={busy || !changed || stale} aria-describedby={approval.length > 0 ? 'edit-approval' : undefined}>
          {busy ? 'Saving…' : approval.length > 0 ? 'Request approval' : 'Save changes'}
        </button>
        <button type="button" className="secondary" onClick={() => onDone('')}>
          Cancel
        </button>
        <Link to="/requests" className="small">
          My requests
        </Link>
      </div>
    </form>
  );
}
