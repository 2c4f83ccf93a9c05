// The documented API (docs/api.md), on the console's own origin. A 401 token_expired refreshes once and repeats
// the call (docs/mobile-app.md section 9); invalid_token / unauthenticated mean signing in again.

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message || code);
    this.status = status;
    this.code = code;
  }
}

export class Api {
  constructor(config, session) {
    this.base = config.api_base;
    this.session = session;
    this.clockSkewS = 0; // the API's clock minus this screen's, from the Date header (countdowns use the API's)
  }

  now() {
    return Date.now() / 1000 + this.clockSkewS;
  }

  async get(path) {
    let answer = await this.send(path);
    if (answer.status === 401 && (await codeOf(answer.clone())) === "token_expired") {
      await this.session.refresh();
      answer = await this.send(path);
    }
    const data = await answer.json().catch(() => ({}));
    if (!answer.ok) throw new ApiError(answer.status, data.code || "http_" + answer.status, data.message);
    const date = Date.parse(answer.headers.get("Date") || "");
    if (!Number.isNaN(date)) {
      const skew = date / 1000 - Date.now() / 1000; // the header has whole seconds: ignore what they cannot tell
      this.clockSkewS = Math.abs(skew) > 2 ? skew : 0;
    }
    return data;
  }

  async send(path) {
    const token = await this.session.token();
    try {
      return await fetch(this.base + path, {
        headers: { Authorization: `Bearer ${token}`, Accept: "application/json", "x-dyj-app": "dyj-duty-console/0.1" },
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
