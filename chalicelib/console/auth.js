// Signing in as docs/mobile-app.md says (sections 2 and 3): unsigned calls to Cognito's public API with the app
// client id (no secret), USER_PASSWORD_AUTH, NEW_PASSWORD_REQUIRED answered with RespondToAuthChallenge, and
// REFRESH_TOKEN_AUTH 5 minutes before the ID token expires (measured from when the answer arrived: the screen's
// clock may be wrong). The API takes the ID token.

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
  // config.json names no endpoint when the stage trusts another OIDC provider (docs/console.md "Not done yet")
  if (!config.auth_endpoint) throw new AuthError("no_endpoint", "");
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

export class Session {
  constructor(config) {
    this.config = config;
    this.username = sessionStorage.getItem(STORED_USER) || "";
    this.refreshToken = sessionStorage.getItem(STORED_REFRESH) || "";
    this.idToken = "";
    this.expiresAt = 0; // this screen's clock, when the answer arrived + ExpiresIn
    this.pending = null; // one sign-in or refresh at a time
  }

  get resumable() {
    return Boolean(this.refreshToken);
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
    this.idToken = result.IdToken;
    this.expiresAt = Date.now() / 1000 + Number(result.ExpiresIn);
    if (result.RefreshToken) this.refreshToken = result.RefreshToken; // a refresh answers none: keep the first
    sessionStorage.setItem(STORED_USER, username);
    sessionStorage.setItem(STORED_REFRESH, this.refreshToken);
  }

  async refresh() {
    if (!this.pending) {
      this.pending = cognito(this.config, "InitiateAuth", {
        AuthFlow: "REFRESH_TOKEN_AUTH",
        ClientId: this.config.client_id,
        AuthParameters: { REFRESH_TOKEN: this.refreshToken },
      })
        .then((answer) => this.keep(this.username, answer))
        .finally(() => {
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
