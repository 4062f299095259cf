// The errors a request can be refused with, each answered as `status` with `{code, message}`.

/** A malformed or refused request. */
export class RequestError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** A rejected credential: a sync session answers it with an `AuthError` message too. */
export class AuthError extends RequestError {}
