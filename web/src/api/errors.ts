/** One rejected field, as the contract's error body names it. */
export interface FieldError {
  field: string;
  message: string;
}

/** Any non-2xx answer, carrying the contract's error body. */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly details: FieldError[];
  readonly retryAfter: number | null;

  constructor(status: number, code: string, message: string, details: FieldError[] = [], retryAfter: number | null = null) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.details = details;
    this.retryAfter = retryAfter;
  }
}

interface ErrorBody {
  error?: { code?: unknown; message?: unknown; details?: unknown };
}

function isFieldError(value: unknown): value is FieldError {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as FieldError).field === 'string' &&
    typeof (value as FieldError).message === 'string'
  );
}

/** Builds an ApiError from a failed response, whatever its body holds. */
export async function errorFromResponse(response: Response): Promise<ApiError> {
  let body: unknown = null;
  try {
    body = await response.json();
  } catch {
    // A proxy's HTML error page or an empty body: fall back to the status.
  }
  return errorFromBody(response, body);
}

/** The same, from a body already read (openapi-fetch reads it before we see it). */
export function errorFromBody(response: Response, body: unknown): ApiError {
  const retry = Number(response.headers.get('retry-after'));
  const err = (typeof body === 'object' && body !== null ? (body as ErrorBody).error : undefined) ?? {};
  return new ApiError(
    response.status,
    typeof err.code === 'string' ? err.code : `http_${response.status}`,
    typeof err.message === 'string' ? err.message : `The server answered ${response.status}.`,
    Array.isArray(err.details) ? err.details.filter(isFieldError) : [],
    Number.isFinite(retry) && retry > 0 ? retry : null,
  );
}

/** A sentence for a person: what went wrong and what to do about it. */
export function describeError(error: unknown): string {
  if (!(error instanceof ApiError)) {
    return 'Berth could not be reached. Check your connection, then try again.';
  }
  switch (error.code) {
    case 'validation_failed':
      return error.details.length > 0
        ? 'Some fields need attention: see the messages next to them.'
        : `${error.message}.`;
    case 'unauthenticated':
      return 'Your session has ended. Log in again to continue.';
    case 'invalid_credentials':
      return 'That email and password do not match an account. Check them and try again.';
    case 'csrf_failed':
      return 'Your session is out of date. Reload the page and try again.';
    case 'forbidden':
      return `${error.message}. Ask an owner or an admin if you need this.`;
    case 'not_found':
      return 'This no longer exists, or you do not have access to it.';
    case 'conflict':
      return `${error.message}.`;
    case 'rate_limited':
      return `Too many attempts. Wait ${error.retryAfter ?? 60} seconds, then try again.`;
    case 'unavailable':
      return `${error.message}. Berth will retry; try again in ${error.retryAfter ?? 30} seconds.`;
    default:
      return `Something went wrong on the server (${error.message}). Try again; if it persists, tell your platform team.`;
  }
}
