// Signing in as docs/mobile-app.md says (sections 2 and 3): unsigned calls to Cognito's public API with the app
// client id (no secret), USER_PASSWORD_AUTH, NEW_PASSWORD_REQUIRED answered with RespondToAuthChallenge, and
// REFRESH_TOKEN_AUTH 5 minutes before the ID token expires (measured from when the answer arrived: the screen's
// clock may be wrong). The API takes the ID token. Where the stage trusts another OIDC provider (the China regions,
// mobile-app.md section 10), `OidcSession`: the authorization code flow with PKCE, and the refresh token grant.

const REFRESH_MARGIN_S = 5 * 60;
const STORED_REFRESH = "dyj-console-refresh";
const STORED_USER = "dyj-console-user";

export class AuthError extends Error {
  constructor(code, message, session = null) {
    super(message || code);
    this.code = code;
    this.session = session;
  }
}

async function cognito(config, target, body) {
  let answer;
  try {
    answer = await fetch(config.auth_endpoint, {
      method: "POST",
      headers: {
        "Content-Type": "application/x-amz-json-1.1",
        "X-Amz-Target": `AWSCognitoIdentityProviderService.${target}`,
      },
      body: JSON.stringify(body),
    });
  } catch (error) {
    throw new AuthError("network", String(error));
  }
  const data = await answer.json().catch(() => ({}));
  if (!answer.ok) {
    const type = String(data.__type || "InternalErrorException");
    throw new AuthError(type.includes("#") ? type.split("#").pop() : type, data.message || "");
  }
  return data;
}

// What both sign-in flows keep: the ID token the API takes, when it expires (this screen's clock, from when the
// answer arrived), the refresh token (in sessionStorage: a reload resumes), and at most one refresh at a time.
class TokenSession {
  constructor(config) {
    this.config = config;
    this.refreshToken = sessionStorage.getItem(STORED_REFRESH) || "";
    this.idToken = "";
    this.expiresAt = 0;
    this.pending = null;
  }

  get resumable() {
    return Boolean(this.refreshToken);
  }

  remember(idToken, expiresInS, refreshToken) {
    this.idToken = idToken;
    this.expiresAt = Date.now() / 1000 + Number(expiresInS);
    if (refreshToken) this.refreshToken = refreshToken; // a refresh may answer none: keep the first
    sessionStorage.setItem(STORED_REFRESH, this.refreshToken);
  }

  // Callers asking for a token while a refresh is under way share it.
  once(exchange) {
    if (!this.pending) {
      this.pending = exchange().finally(() => {
        this.pending = null;
      });
    }
    return this.pending;
  }

  async token() {
    if (!this.idToken || Date.now() / 1000 >= this.expiresAt - REFRESH_MARGIN_S) await this.refresh();
    return this.idToken;
  }

  signOut() {
    this.idToken = "";
    this.refreshToken = "";
    this.expiresAt = 0;
    sessionStorage.removeItem(STORED_REFRESH);
  }
}

export class Session extends TokenSession {
  constructor(config) {
    super(config);
    this.username = sessionStorage.getItem(STORED_USER) || "";
  }

  async signIn(username, password) {
    const answer = await cognito(this.config, "InitiateAuth", {
      AuthFlow: "USER_PASSWORD_AUTH",
      ClientId: this.config.client_id,
      AuthParameters: { USERNAME: username, PASSWORD: password },
    });
    if (answer.ChallengeName === "NEW_PASSWORD_REQUIRED") {
      throw new AuthError("NEW_PASSWORD_REQUIRED", "首次登录请设置新密码", answer.Session);
    }
    this.keep(username, answer);
  }

  async chooseNewPassword(username, newPassword, challengeSession) {
    const answer = await cognito(this.config, "RespondToAuthChallenge", {
      ChallengeName: "NEW_PASSWORD_REQUIRED",
      ClientId: this.config.client_id,
      Session: challengeSession,
      ChallengeResponses: { USERNAME: username, NEW_PASSWORD: newPassword },
    });
    this.keep(username, answer);
  }

  keep(username, answer) {
    const result = answer.AuthenticationResult;
    if (!result) throw new AuthError(answer.ChallengeName || "unexpected_answer", "无法完成该登录步骤");
    this.username = username;
    sessionStorage.setItem(STORED_USER, username);
    this.remember(result.IdToken, result.ExpiresIn, result.RefreshToken);
  }

  refresh() {
    return this.once(() =>
      cognito(this.config, "InitiateAuth", {
        AuthFlow: "REFRESH_TOKEN_AUTH",
        ClientId: this.config.client_id,
        AuthParameters: { REFRESH_TOKEN: this.refreshToken },
      }).then((answer) => this.keep(this.username, answer)),
    );
  }
}

// --- another OIDC provider: the authorization code flow with PKCE (RFC 7636) in this tab ------------------------

const STORED_FLOW = "dyj-console-oidc"; // the verifier, state and the page's address while the provider signs in

function base64url(bytes) {
  return btoa(String.fromCharCode(...new Uint8Array(bytes))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function randomText() {
  return base64url(crypto.getRandomValues(new Uint8Array(32)));
}

async function provider(config) {
  let answer;
  try {
    answer = await fetch(`${config.issuer.replace(/\/$/, "")}/.well-known/openid-configuration`);
  } catch (error) {
    throw new AuthError("network", String(error));
  }
  if (!answer.ok) throw new AuthError("network", `discovery ${answer.status}`);
  return answer.json();
}

async function tokenGrant(config, fields) {
  const endpoints = await provider(config);
  let answer;
  try {
    answer = await fetch(endpoints.token_endpoint, {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ client_id: config.client_id, ...fields }),
    });
  } catch (error) {
    throw new AuthError("network", String(error));
  }
  const data = await answer.json().catch(() => ({}));
  if (!answer.ok || !data.id_token) throw new AuthError(data.error || "NotAuthorizedException", data.error_description || "");
  return data;
}

export class OidcSession extends TokenSession {
  constructor(config) {
    super(config);
    this.redirectUri = location.origin + location.pathname; // .../console/index.html, registered at the provider
  }

  // The provider's answer is in the address (?code=…&state=… or ?error=…) after its sign-in page.
  get returning() {
    const query = new URLSearchParams(location.search);
    return query.has("code") || query.has("error");
  }

  // To the provider's sign-in page; this page is loaded again with the answer.
  async begin() {
    const endpoints = await provider(this.config);
    const verifier = randomText();
    const state = randomText();
    const challenge = base64url(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier)));
    sessionStorage.setItem(STORED_FLOW, JSON.stringify({ verifier, state, hash: location.hash }));
    const query = new URLSearchParams({
      response_type: "code",
      client_id: this.config.client_id,
      redirect_uri: this.redirectUri,
      scope: "openid profile offline_access",
      state,
      code_challenge: challenge,
      code_challenge_method: "S256",
    });
    location.assign(`${endpoints.authorization_endpoint}?${query}`);
  }

  // The code exchanged for tokens; the address gets its page (#/…) back, without the provider's answer.
  async complete() {
    const query = new URLSearchParams(location.search);
    const flow = JSON.parse(sessionStorage.getItem(STORED_FLOW) || "{}");
    sessionStorage.removeItem(STORED_FLOW);
    history.replaceState(null, "", this.redirectUri + (flow.hash || ""));
    if (query.has("error")) throw new AuthError(query.get("error"), query.get("error_description") || "");
    if (!flow.state || query.get("state") !== flow.state) throw new AuthError("state_mismatch", "");
    const answer = await tokenGrant(this.config, {
      grant_type: "authorization_code",
      code: query.get("code"),
      redirect_uri: this.redirectUri,
      code_verifier: flow.verifier,
    });
    this.keep(answer);
  }

  keep(answer) {
    this.remember(answer.id_token, answer.expires_in || 300, answer.refresh_token);
  }

  async refresh() {
    if (!this.refreshToken) throw new AuthError("NotAuthorizedException", "");
    const grant = { grant_type: "refresh_token", refresh_token: this.refreshToken };
    return this.once(() => tokenGrant(this.config, grant).then((answer) => this.keep(answer)));
  }
}
