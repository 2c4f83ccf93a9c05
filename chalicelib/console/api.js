// The documented API (docs/api.md), on the console's own origin. A 401 token_expired refreshes once and repeats
// the call (docs/mobile-app.md section 9); invalid_token / unauthenticated mean signing in again.

const MAX_TAGGED = 20; // listings remembered with their ETag (the wall under a few filter choices)

export class ApiError extends Error {
  constructor(status, code, message, details = null) {
    super(message || code);
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

export class Api {
  constructor(config, session) {
    this.base = config.api_base;
    this.session = session;
    this.clockSkewS = 0; // the API's clock minus this screen's, from the Date header (countdowns use the API's)
    this.requests = 0; // calls made, and of those answered 304 (unchanged): shown nowhere, tests read them
    this.unchanged = 0;
    this.tagged = new Map(); // path → {etag, data}: a listing that answers with an ETag (GET /wall)
  }

  now() {
    return Date.now() / 1000 + this.clockSkewS;
  }

  async get(path) {
    return this.call("GET", path);
  }

  // One action or decision: a JSON body; the API's error (code, Chinese message, details) is thrown as ApiError.
  async post(path, body = {}) {
    return this.call("POST", path, body);
  }

  async call(method, path, body) {
    const known = method === "GET" ? this.tagged.get(path) : undefined;
    let answer = await this.send(method, path, body, known?.etag);
    if (answer.status === 401 && (await codeOf(answer.clone())) === "token_expired") {
      await this.session.refresh();
      answer = await this.send(method, path, body, known?.etag);
    }
    this.learnClock(answer);
    if (answer.status === 304 && known) {
      this.unchanged += 1;
      return known.data;
    }
    const data = await answer.json().catch(() => ({}));
    if (!answer.ok) {
      throw new ApiError(answer.status, data.code || "http_" + answer.status, data.message, data.details || null);
    }
    const etag = answer.headers.get("ETag");
    if (method === "GET" && etag) {
      if (this.tagged.size >= MAX_TAGGED) this.tagged.delete(this.tagged.keys().next().value);
      this.tagged.set(path, { etag, data });
    }
    return data;
  }

  learnClock(answer) {
    const date = Date.parse(answer.headers.get("Date") || "");
    if (!Number.isNaN(date)) {
      const skew = date / 1000 - Date.now() / 1000; // the header has whole seconds: ignore what they cannot tell
      this.clockSkewS = Math.abs(skew) > 2 ? skew : 0;
    }
  }

  async send(method, path, body, etag) {
    const token = await this.session.token();
    const headers = { Authorization: `Bearer ${token}`, Accept: "application/json", "x-dyj-app": "dyj-duty-console/0.2" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (etag) headers["If-None-Match"] = etag;
    this.requests += 1;
    try {
      // no-store: the browser's cache neither answers nor revalidates by itself; the ETag above is ours to send
      return await fetch(this.base + path, {
        method,
        headers,
        cache: "no-store",
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (error) {
      throw new ApiError(0, "network", String(error));
    }
  }

  // Every page of a listing: follow next_cursor until it is null (a short or empty page is not the end).
  async all(path) {
    const items = [];
    let cursor = null;
    do {
      const separator = path.includes("?") ? "&" : "?";
      const page = await this.get(cursor ? `${path}${separator}cursor=${encodeURIComponent(cursor)}` : path);
      items.push(...page.items);
      cursor = page.next_cursor;
    } while (cursor);
    return items;
  }
}

async function codeOf(answer) {
  const data = await answer.json().catch(() => ({}));
  return data.code || "";
}
