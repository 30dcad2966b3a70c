import { useEffect, useMemo, useState, type FormEvent } from 'react';
import { Link, useNavigate } from 'react-router';
import { environments, isApprovalAnswer, templates as templatesApi, type Preview } from '../api/environments';
import { ApiError } from '../api/errors';
import { EnvironmentFormFields } from '../components/EnvironmentFormFields';
import { ErrorNotice, Loading } from '../components/ui';
import { approvalWarnings } from '../lib/changes';
import { buildSpec, emptyForm, fieldId, formFields, mapFieldErrors, touchedOnly, type EnvironmentForm } from '../lib/form';
import { useDebounced, usePageTitle, useResource } from '../lib/useResource';

const PREVIEW_DEBOUNCE_MS = 400;

export function CreateEnvironmentPage() {
  usePageTitle('New environment');
  const navigate = useNavigate();
  const templates = useResource((signal) => templatesApi.list(signal), 'templates');
  const [form, setForm] = useState<EnvironmentForm>(() => emptyForm());
  const [templateChosen, setTemplateChosen] = useState(false);
  const [submitErrors, setSubmitErrors] = useState<ApiError | null>(null);
  const [submitFailure, setSubmitFailure] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const [preview, setPreview] = useState<Preview | null>(null);
  const [previewError, setPreviewError] = useState<unknown>(null);
  const [previewing, setPreviewing] = useState(false);
  // The inputs the person has left: live errors show there only, never on a field not yet reached.
  const [touched, setTouched] = useState<ReadonlySet<string>>(() => new Set());
  // Typed into or left: from then on the field's live errors show.
  const touch = (id: string) => {
    if (id && !touched.has(id)) setTouched(new Set([...touched, id]));
  };

  // Preselect the first template once they load; the person can pick another or none.
  useEffect(() => {
    const first = templates.data?.[0];
    if (first && !templateChosen) {
      setForm((f) => ({ ...f, template: first.name }));
      setTemplateChosen(true);
    }
  }, [templates.data, templateChosen]);

  const spec = useMemo(() => buildSpec(form), [form]);
  const specJson = useDebounced(JSON.stringify(spec), PREVIEW_DEBOUNCE_MS);

  useEffect(() => {
    const controller = new AbortController();
    setPreviewing(true);
    environments
      .preview(JSON.parse(specJson), controller.signal)
      .then((p) => {
        setPreview(p);
        setPreviewError(null);
      })
      .catch((err: unknown) => {
        if (!controller.signal.aborted) setPreviewError(err);
      })
      .finally(() => {
        if (!controller.signal.aborted) setPreviewing(false);
      });
    return () => controller.abort();
  }, [specJson]);

  const known = useMemo(() => formFields(form), [form]);
  const liveDetails = previewError instanceof ApiError ? previewError.details : [];
  const errors = submitErrors ? mapFieldErrors(submitErrors.details, known) : touchedOnly(mapFieldErrors(liveDetails, known), touched);
  const unplaced = submitErrors ? (errors.get('') ?? []) : [];
  // Over the policy's limits the create becomes a request: the button says so before it is pressed.
  const needsApproval = preview !== null && !previewError && approvalWarnings(preview.warnings).length > 0;

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setSubmitErrors(null);
    setSubmitFailure(null);
    try {
      const answer = await environments.create(spec);
      if (isApprovalAnswer(answer)) {
        navigate('/', { state: { flash: `“${spec.name}” asks for more than the policy allows, so it was sent to an admin for approval. It appears here once approved.` } });
      } else {
        navigate(`/environments/${encodeURIComponent(answer.name)}`);
      }
    } catch (err) {
      if (err instanceof ApiError && err.status === 409 && err.code === 'conflict' && /name|exists|taken|deleted/i.test(err.message)) {
        // The name is taken: said at the name field, where it can be changed.
        setSubmitErrors(new ApiError(409, err.code, err.message, [{ field: 'name', message: `${err.message}: choose another name` }]));
        document.getElementById(fieldId('name'))?.focus();
      } else if (err instanceof ApiError && err.details.length > 0) {
        setSubmitErrors(err);
        const first = mapFieldErrors(err.details, known).keys().next().value;
        if (first) document.getElementById(fieldId(first))?.focus();
      } else setSubmitFailure(err);
    } finally {
      setBusy(false);
    }
  };

  return (
    <section>
      <div className="page-head">
        <h1>New environment</h1>
        <Link to="/">Cancel</Link>
      </div>
      <div className="split">
        <form
          className="create"
          onSubmit={(e) => void submit(e)}
          onBlur={(e) => touch(e.target.id)}
          onChange={(e) => touch((e.target as HTMLElement).id)}
          noValidate
          aria-describedby="create-summary"
        >
          {templates.loading && !templates.data && <Loading what="templates" />}
          {templates.error ? <ErrorNotice error={templates.error} retry={templates.reload} /> : null}
          <EnvironmentFormFields
            form={form}
            onChange={(f) => {
              setForm(f);
              setSubmitErrors(null);
            }}
            templates={templates.data ?? []}
            errors={errors}
          />
          <div id="create-summary">
            {unplaced.length > 0 && (
              <div className="notice error" role="alert">
                <ul>
                  {unplaced.map((m) => (
                    <li key={m}>{m}</li>
                  ))}
                </ul>
              </div>
            )}
            <ErrorNotice error={submitFailure} />
          </div>
          {needsApproval && (
            <p className="notice" id="create-approval">
              This asks for more than the policy allows on its own: it will be sent to an admin for approval (see the preview’s warnings).
            </p>
          )}
          <button type="submit" disabled={busy} aria-describedby={needsApproval ? 'create-approval' : undefined}>
            {busy ? 'Sending…' : needsApproval ? 'Request approval' : 'Create environment'}
          </button>
        </form>
        <aside className="preview" aria-label="Preview" aria-busy={previewing}>
          <h2>Preview</h2>
          {previewError && !(previewError instanceof ApiError && previewError.code === 'validation_failed') ? (
            <ErrorNotice error={previewError} />
          ) : null}
          {previewError instanceof ApiError && previewError.code === 'validation_failed' && (
            <p className="muted">Fix the highlighted fields to see what will be created.</p>
          )}
          {preview && (
            <div className={previewError ? 'stale' : undefined}>
              <h3>What you get</h3>
              <ul className="summary">
                {preview.summary.map((line) => (
                  <li key={line}>{line}</li>
                ))}
              </ul>
              {preview.warnings.length > 0 && (
                <>
                  <h3>Warnings</h3>
                  <ul className="warnings">
                    {preview.warnings.map((w) => (
                      <li key={w}>{w}</li>
                    ))}
                  </ul>
                </>
              )}
              <details>
                <summary>Kubernetes objects (YAML)</summary>
                <pre className="yaml" tabIndex={0}>
                  {preview.yaml}
                </pre>
              </details>
            </div>
          )}
          {!preview && !previewError && <Loading what="preview" />}
        </aside>
      </div>
    </section>
  );
}
