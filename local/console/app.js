// The duty console (值守大屏): sign in, then the wall. Plain ES modules, no build step; the page calls only the
// documented API on its own origin and Cognito's public sign-in calls (docs/local-platform.md "The console").

import { Api } from "./api.js";
import { AuthError, Session } from "./auth.js";
import { Wall } from "./wall.js";

const SIGN_IN_ERRORS = {
  NotAuthorizedException: "用户名或密码错误",
  UserNotFoundException: "用户名或密码错误",
  PasswordResetRequiredException: "密码已被管理员重置，请联系系统管理员",
  InvalidPasswordException: "新密码不符合要求：至少 12 位，含大写字母、小写字母和数字",
  TooManyRequestsException: "尝试次数过多，请稍后再试",
  LimitExceededException: "尝试次数过多，请稍后再试",
  network: "无法连接登录服务",
};

const $ = (id) => document.getElementById(id);

async function main() {
  const config = await (await fetch("./config.json")).json();
  const session = new Session(config);
  const api = new Api(config, session);
  const wall = new Wall(api, { body: $("wall-body"), count: $("count"), status: $("status"), announce: $("announce") });
  let challenge = null;

  function show(signedIn) {
    $("sign-in").hidden = signedIn;
    $("console").hidden = !signedIn;
  }

  async function enter() {
    try {
      const me = await api.get("/me");
      $("who").textContent = `${me.name}（${me.role_zh}）`;
    } catch (error) {
      return deny(error);
    }
    show(true);
    wall.start();
  }

  function deny(error) {
    wall.stop();
    session.signOut();
    show(false);
    $("sign-in-error").textContent = error.message || "请重新登录";
  }
  wall.onDenied = deny;

  $("sign-in-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const username = $("username").value.trim();
    $("sign-in-error").textContent = "";
    try {
      if (challenge) await session.chooseNewPassword(username, $("new-password").value, challenge);
      else await session.signIn(username, $("password").value);
      challenge = null;
      $("new-password-row").hidden = true;
      $("password").value = "";
      await enter();
    } catch (error) {
      if (error instanceof AuthError && error.code === "NEW_PASSWORD_REQUIRED") {
        challenge = error.session;
        $("new-password-row").hidden = false;
        $("sign-in-error").textContent = "首次登录，请设置新密码";
        return;
      }
      const code = error instanceof AuthError ? error.code : "";
      $("sign-in-error").textContent = SIGN_IN_ERRORS[code] || `登录失败（${error.message}）`;
    }
  });

  $("sign-out").addEventListener("click", () => {
    wall.stop();
    session.signOut();
    show(false);
  });

  if (session.resumable) {
    try {
      await session.refresh();
      return enter();
    } catch {
      session.signOut();
    }
  }
  show(false);
}

main();
