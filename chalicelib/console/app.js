// The duty console (值守大屏): sign in, then the pages of the URL hash — the wall (#/wall?sector=…&level=…), the map,
// a warning (#/warning/ID), device status, declarations, evaluation reports. Plain ES modules, no build step; the
// page calls only the documented API on its own origin and Cognito's public sign-in calls (docs/console.md).
// The wall keeps polling on every page, so a new red warning is announced wherever the officer is.

import { Api } from "./api.js";
import { AuthError, OidcSession, Session } from "./auth.js";
import { drawMap } from "./map.js";
import { showDeclarations, showDevices, showEvaluations } from "./pages.js";
import { Alarm } from "./sound.js";
import { formatHash, parseHash } from "./ui.js";
import { FILTER_FIELDS, Wall, renderFilters } from "./wall.js";
import { WarningPage } from "./warning.js";

const SIGN_IN_ERRORS = {
  NotAuthorizedException: "用户名或密码错误",
  UserNotFoundException: "用户名或密码错误",
  PasswordResetRequiredException: "密码已被管理员重置，请联系系统管理员",
  InvalidPasswordException: "新密码不符合要求：至少 12 位，含大写字母、小写字母和数字",
  TooManyRequestsException: "尝试次数过多，请稍后再试",
  LimitExceededException: "尝试次数过多，请稍后再试",
  network: "无法连接登录服务",
  access_denied: "统一身份认证未授权登录",
  state_mismatch: "登录已过期或来源不明，请重新登录",
  invalid_grant: "登录已过期，请重新登录",
};
const PAGES = ["wall", "map", "warning", "devices", "declarations", "evaluations"];
const LOCATIONS_MAX_AGE_MS = 60_000;
const SOUND_ZH = { on: "声音：开", muted: "声音：已静音", blocked: "声音：点击开启" };

const $ = (id) => document.getElementById(id);

async function main() {
  const config = await (await fetch("./config.json")).json();
  // Cognito's own API where the stage has a pool (config.auth_endpoint); another OIDC provider's sign-in page else
  const oidc = !config.auth_endpoint;
  const session = oidc ? new OidcSession(config) : new Session(config);
  if (oidc) {
    for (const field of ["username", "password"]) {
      $(field).required = false;
      $(field).closest("label").hidden = true;
    }
    $("sign-in-form").querySelector("button[type=submit]").textContent = "统一身份认证登录";
  }
  const api = new Api(config, session);
  const alarm = new Alarm();
  const wall = new Wall(api, { body: $("wall-body"), count: $("count"), status: $("status"), announce: $("announce") });
  const warningPage = new WarningPage(api, $("page-warning"));
  wall.alarm = alarm;
  let challenge = null;
  let me = null;
  let current = "";
  let locations = null; // device id → {lat, lon} registered, or a vehicle's last {lat, lon, at}: GET /devices, once a minute
  let locationsAt = 0;

  let loading = null; // the devices' locations being read

  async function loadLocations() {
    try {
      const devices = await api.all("/devices?limit=2000");
      locations = Object.fromEntries(
        devices.filter((d) => d.location || d.last_fix).map((d) => [d.device_id, d.location || d.last_fix]),
      );
    } catch {
      locations = locations || {}; // the map still draws, by area
    }
  }

  // Draw at once with what is known (by area until the devices' locations arrive), again once they have.
  async function drawMapWithLocations() {
    if (!$("page-map").hidden) drawMap($("map"), wall.warnings, locations || {});
    if (locations && Date.now() - locationsAt <= LOCATIONS_MAX_AGE_MS) return;
    if (!loading) {
      locationsAt = Date.now();
      loading = loadLocations().finally(() => {
        loading = null;
      });
      await loading;
      if (!$("page-map").hidden) drawMap($("map"), wall.warnings, locations);
    }
  }

  function showSound() {
    $("sound").textContent = SOUND_ZH[alarm.state];
    $("sound").dataset.state = alarm.state;
  }
  alarm.onChange = showSound;
  $("sound").addEventListener("click", () => {
    if (alarm.allowed) alarm.toggleMute();
    else alarm.arm();
  });

  function show(signedIn) {
    $("sign-in").hidden = signedIn;
    $("console").hidden = !signedIn;
    $("nav").hidden = !signedIn;
  }

  function route() {
    if (!me) return;
    const { page, arg, params } = parseHash(location.hash);
    const name = PAGES.includes(page) ? page : "wall";
    for (const other of PAGES) $(`page-${other}`).hidden = other !== name;
    for (const link of document.querySelectorAll("#nav a")) {
      link.classList.toggle("current", link.dataset.page === name);
    }
    if (name !== "warning") warningPage.stop();
    if (name === "wall") {
      const filters = Object.fromEntries(FILTER_FIELDS.map((field) => [field, params[field] || []]));
      $("nav").querySelector('[data-page="wall"]').href = formatHash("wall", filters);
      if (location.hash !== current) wall.setFilters(filters);
      renderFilters($("filters"), filters, (next) => {
        location.hash = formatHash("wall", next);
      });
    } else if (name === "map") {
      drawMapWithLocations();
    } else if (name === "warning") {
      warningPage.show(arg);
    } else if (name === "devices") {
      showDevices(api, $("page-devices"), params);
    } else if (name === "declarations") {
      showDeclarations(api, $("page-declarations"), params, me);
    } else if (name === "evaluations") {
      showEvaluations(api, $("page-evaluations"), me);
    }
    current = location.hash;
  }
  window.addEventListener("hashchange", route);
  wall.onUpdate = () => {
    if (!$("page-map").hidden) drawMapWithLocations();
  };

  async function enter() {
    try {
      me = await api.get("/me");
      $("who").textContent = `${me.name}（${me.role_zh}）`;
    } catch (error) {
      return deny(error);
    }
    warningPage.me = me;
    show(true);
    showSound();
    const { page, params } = parseHash(location.hash);
    if (page === "wall" || !PAGES.includes(page)) {
      wall.filters = Object.fromEntries(FILTER_FIELDS.map((field) => [field, params[field] || []]));
      current = location.hash;
    }
    wall.start();
    route();
  }

  function deny(error) {
    wall.stop();
    warningPage.stop();
    session.signOut();
    me = null;
    show(false);
    $("sign-in-error").textContent = error.message || "请重新登录";
  }
  wall.onDenied = deny;

  $("sign-in-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    alarm.arm(); // a user gesture: the browser lets the page play sound from now on
    const username = $("username").value.trim();
    $("sign-in-error").textContent = "";
    try {
      if (oidc) return await session.begin(); // to the provider's page; this page loads again with its answer
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
    warningPage.stop();
    session.signOut();
    me = null;
    show(false);
  });

  if (oidc && session.returning) {
    try {
      await session.complete();
      return enter();
    } catch (error) {
      session.signOut();
      show(false);
      const code = error instanceof AuthError ? error.code : "";
      $("sign-in-error").textContent = SIGN_IN_ERRORS[code] || `登录失败（${error.message}）`;
      return;
    }
  }
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
