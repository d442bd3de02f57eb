// The dashboard: plain ES modules, no build step, every URL relative (works under a stage prefix).
// Access token in memory only; the refresh token in sessionStorage so a reload keeps the session.
// It runs under `Content-Security-Policy: default-src 'self'`: no inline script or style anywhere.

import { LANGUAGES, currentLanguage, format, has, setLanguage, t, translate } from "./i18n.js";
import * as passkeys from "./passkeys.js";

const API = new URL("../api/", location.href);
const REFRESH_KEY = "paidupload.refresh";
const POLL_MS = 1500;
const BUSY = new Set(["pending_upload", "processing"]);
const CHART_DAYS = 30;
const SVG = "http://www.w3.org/2000/svg";
// A customer's own page; a staff member sees it as "My page" of the console.
const OWN_PANELS = ["#verify-panel", "#pay-panel", "#upload-panel", "#files-panel", "#payments-panel", "#activity-panel", "#password-panel", "#mfa-panel", "#passkeys-panel", "#leaving-panel"];
const CONSOLE_PAGES = ["#console-nav", "#overview-page", "#list-page", "#user-detail"];
// Tone of the banner after a return from the gateway (`?payment=`); anything else is "invalid".
const RETURN_TONES = { success: "ok", review: "info", failed: "warn", cancelled: "warn", expired: "warn", initiated: "info", invalid: "error" };

const state = { access: null, user: null, usage: null, poll: null, banner: null, choices: null, list: { view: null, cursor: null, ticket: 0 }, enrolling: false, renderTurn: 0, lastList: "users", resetToken: null, mfaToken: null };

const $ = (selector, root = document) => root.querySelector(selector);

class ApiError extends Error {
  constructor(status, error) {
    super(error.message || `Request failed (${status}).`);
    this.status = status;
    this.code = error.code;
    this.details = error.details;
  }
}

// --- the API ---------------------------------------------------------------------------

function send(path, { method = "GET", body, headers = {}, auth = true } = {}) {
  const init = { method, headers: { Accept: "application/json", ...headers } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  if (auth && state.access) init.headers.Authorization = `Bearer ${state.access}`;
  return fetch(new URL(path, API), init);
}

async function attempt(path, options) {
  const response = await send(path, options);
  if (response.status === 204 || (options.raw && response.ok)) return { response, data: null };
  try {
    return { response, data: await response.json() };
  } catch {
    return { response, data: null };
  }
}

// A wrong password or code (e.g. when changing the password or turning the factor off) answers
// 401 too: an answer to show, not an ended session.
const WRONG_SECRET = new Set(["invalid_credentials", "invalid_code"]);

// One call; an expired access token is renewed once.
async function api(path, options = {}) {
  let { response, data } = await attempt(path, options);
  const expired = () => response.status === 401 && options.auth !== false && !WRONG_SECRET.has(data?.error?.code);
  if (expired() && (await renew())) ({ response, data } = await attempt(path, options));
  if (!response.ok) {
    if (expired()) signedOut("session_ended");
    throw new ApiError(response.status, data?.error || {});
  }
  return options.raw ? response : data;
}

function keep(tokens) {
  state.access = tokens.access;
  sessionStorage.setItem(REFRESH_KEY, tokens.refresh);
}

// One renewal at a time: refresh tokens rotate, so parallel calls that all met an expired (or
// just superseded) access token share one refresh instead of spending it against each other.
let renewing = null;

function renew() {
  renewing ??= refreshSession().finally(() => {
    renewing = null;
  });
  return renewing;
}

async function refreshSession() {
  const refresh = sessionStorage.getItem(REFRESH_KEY);
  if (!refresh) return false;
  const response = await send("refresh/", { method: "POST", body: { refresh }, auth: false });
  if (!response.ok && sessionStorage.getItem(REFRESH_KEY) !== refresh) return true; // a newer session was kept meanwhile
  if (!response.ok) {
    sessionStorage.removeItem(REFRESH_KEY);
    state.access = null;
    return false;
  }
  keep(await response.json());
  return true;
}

// --- rendering helpers -----------------------------------------------------------------

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(child ?? ""));
  return node;
}

function svg(tag, attributes = {}, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
  node.append(...children);
  return node;
}

function show(id, visible) {
  $(id).hidden = !visible;
}

// The banner remembers its key, so switching the language re-says it in the new one.
function banner(key, tone = "info", vars = {}) {
  state.banner = key ? { key, tone, vars } : null;
  const node = $("#banner");
  node.textContent = key ? t(key, vars) : "";
  node.className = key ? `banner ${tone}` : "";
}

// What to tell the user about a failure: the server's English sentence, or the chosen
// language's text for its code; client-side problems carry their own key.
function errorText(error) {
  if (error.key) return t(error.key, error.vars);
  if (currentLanguage() === "en" && error.message) return error.message;
  return has(`error.${error.code}`) ? t(`error.${error.code}`) : t("error.generic");
}

let fieldErrors = 0;

// A failure shown in its container: the sentence in `.form-error` (role=alert), and each
// field's problem in an element the field points to (aria-describedby), its label untouched.
function formError(container, error) {
  container.querySelectorAll(".field-error").forEach((node) => node.remove());
  container.querySelectorAll("[aria-invalid]").forEach((input) => {
    input.removeAttribute("aria-invalid");
    input.removeAttribute("aria-describedby");
  });
  const sentence = $(":scope > .form-error", container) || $(".form-error", container); // its own, not a nested form's
  sentence.textContent = error ? errorText(error) : "";
  if (!error || !error.details || typeof error.details !== "object") return;
  for (const [field, problem] of Object.entries(error.details)) {
    const input = container.querySelector(`[name="${CSS.escape(field)}"]`);
    if (!input) continue;
    const id = `field-error-${++fieldErrors}`;
    const text = currentLanguage() === "en" ? String(problem) : t("error.field");
    input.closest("label").after(el("p", { class: "field-error", id }, text));
    input.setAttribute("aria-invalid", "true");
    input.setAttribute("aria-describedby", id);
  }
}

function announce(selector, key, vars = {}) {
  $(selector).textContent = t(key, vars);
}

const label = (prefix, value) => (has(`${prefix}.${value}`) ? t(`${prefix}.${value}`) : value.replaceAll("_", " "));
const badge = (status) => el("span", { class: `badge ${status}` }, label("status", status));
// A payment's status, and why it is held when it waits for review.
const paymentStatus = (payment) => (payment.review_reason ? el("span", {}, badge(payment.status), " ", el("small", { class: "muted" }, payment.review_reason)) : badge(payment.status));
const shortId = (id) => (id ? el("code", { title: id }, `${id.slice(0, 8)}…`) : "—");
const money = (item) => format.money(item.amount, item.currency);
const details = (metadata) =>
  Object.entries(metadata || {})
    .map(([key, value]) => `${key}: ${typeof value === "object" ? JSON.stringify(value) : value}`)
    .join(", ");

// A download the API answered (fetched with the token, so no plain link could): saved from a Blob URL.
async function save(response, name) {
  const link = el("a", { href: URL.createObjectURL(await response.blob()), download: name, hidden: "" });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 60_000);
}

function button(text, onclick, className = "quiet") {
  return el("button", { type: "button", class: className, onclick }, text);
}

// A form's submit: no page load, its last error cleared, and a failure said in it.
function whenSubmitted(act) {
  return async (event) => {
    event.preventDefault();
    const form = event.currentTarget;
    formError(form, null);
    try {
      await act(form);
    } catch (error) {
      formError(form, error);
    }
  };
}

// --- screens ---------------------------------------------------------------------------

function signedOut(messageKey) {
  state.access = null;
  state.user = null;
  state.enrolling = false;
  sessionStorage.removeItem(REFRESH_KEY);
  clearInterval(state.poll);
  state.poll = null;
  for (const id of ["#account", ...OWN_PANELS, ...CONSOLE_PAGES]) show(id, false);
  endEnrolment();
  // The next one to log in on this tab meets no filter of this one's.
  for (const form of ["#search-form", "#list-filter"]) $(form).reset();
  state.list.view = null;
  show("#signed-out", true);
  if (messageKey) banner(messageKey, "warn");
}

async function signedIn() {
  const { user, usage } = await api("me/");
  state.user = user;
  state.usage = usage;
  // Staff pages need a second factor: without one, enrolment comes first and nothing else is asked.
  const wasEnrolling = state.enrolling;
  state.enrolling = isStaff(user) && !user.mfa_enabled && !user.passkeys;
  if (wasEnrolling && !state.enrolling) endEnrolment(); // a passkey was added instead of TOTP
  show("#signed-out", false);
  show("#account", true);
  await render();
}

// Everything that depends on data, language or the address; called after sign-in, on a language
// switch and when the console's page changes (`focus`: its heading takes the focus).
async function render({ focus = false } = {}) {
  // Renders overlap (a click on the navigation while the last page still loads): only the newest
  // may show its page, or a slow older one would hide the page the user asked for after it.
  const turn = ++state.renderTurn;
  const user = state.user;
  const role = user.is_superuser ? "role.superuser" : user.is_staff ? "role.staff" : null;
  $("#whoami").textContent = role ? `${user.username} (${t(role)})` : user.username;
  if (state.enrolling) {
    await enrolment();
    return;
  }
  const view = isStaff(user) ? currentView() : "me";
  show("#console-nav", isStaff(user));
  for (const link of document.querySelectorAll("#console-nav a")) {
    if (link.dataset.view === view) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  // Another page's sections go at once; this one's show with their data in (nothing shifts).
  if (view !== "me") showOwnPage(false);
  for (const [id, shown] of [["#overview-page", "overview"], ["#list-page", "list"], ["#user-detail", "user"]]) {
    if (shown !== (Object.hasOwn(LISTS, view) ? "list" : view)) show(id, false);
  }
  if (view === "me") await loadOwnPage();
  else if (view === "overview") await loadOverview();
  else if (view === "user") await openUser(decodeURIComponent(location.hash.slice("#user/".length)));
  else {
    state.lastList = view; // where "Back to the list" leads from a user's story
    await loadList(view);
  }
  if (turn !== state.renderTurn) return;
  showOwnPage(view === "me");
  show("#overview-page", view === "overview");
  show("#list-page", Object.hasOwn(LISTS, view));
  show("#user-detail", view === "user");
  if (focus) focusHeading();
}

// After a change of page, its first heading has the focus (a screen reader says where it is).
function focusHeading() {
  const heading = $("main > section:not([hidden]) h2");
  if (!heading) return;
  heading.setAttribute("tabindex", "-1");
  heading.focus();
}

function showOwnPage(visible) {
  const user = state.user;
  for (const id of ["#payments-panel", "#activity-panel", "#password-panel", "#mfa-panel", "#leaving-panel"]) show(id, visible);
  show("#pay-panel", visible && !user.has_paid);
  show("#verify-panel", visible && user.email !== null && !user.email_verified);
  for (const id of ["#upload-panel", "#files-panel"]) show(id, visible && user.has_paid);
  show("#passkeys-panel", visible && passkeys.supported());
}

async function loadOwnPage() {
  const user = state.user;
  renderSecondFactor();
  showUsage();
  if (user.email) announce("#verify-prompt", "verify.prompt", { email: user.email });
  await Promise.all([passkeys.render(), loadPayments(), loadActivity(), user.has_paid ? loadFiles() : null]);
}

async function loadFiles() {
  const { items } = await api("files/?limit=50");
  $("#files").replaceChildren(
    ...items.map((file) =>
      el(
        "tr",
        {},
        el("td", {}, file.filename),
        el("td", {}, format.bytes(file.size)),
        el("td", {}, badge(file.status), file.error ? el("small", { class: "muted" }, ` ${file.error}`) : ""),
        el("td", { class: "num" }, file.word_count == null ? "" : format.number(file.word_count)),
        el("td", {}, format.when(file.created_at)),
        el(
          "td",
          { class: "actions" },
          file.status === "completed" ? button(t("file.download"), () => download(file.id)) : "",
          button(t("file.delete"), () => deleteFile(file)),
        ),
      ),
    ),
  );
  const busy = items.some((file) => BUSY.has(file.status));
  if (busy && !state.poll) state.poll = setInterval(() => loadFiles().catch(() => {}), POLL_MS);
  if (!busy && state.poll) {
    clearInterval(state.poll);
    state.poll = null;
    announce("#upload-status", "upload.done");
    loadActivity().catch(() => {});
  }
}

async function download(fileId) {
  const file = await api(`files/${encodeURIComponent(fileId)}/`);
  if (file.download_url) location.assign(file.download_url);
}

async function deleteFile(file) {
  const panel = $("#files-panel");
  formError(panel, null);
  try {
    await api(`files/${encodeURIComponent(file.id)}/`, { method: "DELETE" });
    announce("#files-status", "file.deleted", { name: file.filename });
    await Promise.all([loadFiles(), loadActivity(), refreshUsage()]);
  } catch (error) {
    formError(panel, error);
  }
}

function paymentRow(payment, ...extra) {
  return el(
    "tr",
    {},
    el("td", {}, el("code", {}, payment.transaction_id)),
    el("td", {}, paymentStatus(payment)),
    el("td", {}, money(payment)),
    el("td", {}, format.when(payment.created_at)),
    ...extra,
  );
}

async function loadPayments() {
  const { items } = await api("transactions/?limit=20");
  $("#payments").replaceChildren(...items.map((payment) => paymentRow(payment)));
}

const activityItem = (entry) => el("li", {}, el("time", { datetime: entry.created_at }, format.when(entry.created_at)), " ", label("act", entry.action));

async function loadActivity() {
  const { items } = await api("activity/?limit=20");
  $("#activity").replaceChildren(...items.map(activityItem));
}

// --- a user's own actions --------------------------------------------------------------

// A right password either opens the session or, with a second factor on, asks for its code.
async function passwordAccepted(answer) {
  if (!answer.mfa_required) {
    keep(answer);
    await signedIn();
    return;
  }
  state.mfaToken = answer.mfa_token;
  recoveryMode("mfa");
}

const onLogin = whenSubmitted(async (form) => {
  const answer = await api("login/", { method: "POST", body: { username: form.username.value, password: form.password.value }, auth: false });
  form.reset();
  banner(null);
  await passwordAccepted(answer);
});

async function onSecondFactor(event) {
  event.preventDefault();
  const form = event.currentTarget;
  formError(form, null);
  try {
    keep(await api("login/mfa/", { method: "POST", body: { mfa_token: state.mfaToken, code: form.code.value }, auth: false }));
    state.mfaToken = null;
    form.reset();
    recoveryMode(null);
    await signedIn();
  } catch (error) {
    if (error.code === "invalid_token") recoveryMode(null); // too many wrong codes, or too late: start again
    formError(error.code === "invalid_token" ? $("#login-form") : form, error);
  }
}

const onRegister = whenSubmitted(async (form) => {
  const body = { username: form.username.value, email: form.email.value, password: form.password.value, language: currentLanguage() };
  await api("register/", { method: "POST", body, auth: false });
  keep(await api("login/", { method: "POST", body: { username: body.username, password: body.password }, auth: false }));
  form.reset();
  banner("welcome", "ok");
  await signedIn();
});

// Password recovery and the code step replace the log-in and register forms with one of their own
// ("forgot" | "reset" | "mfa" | null).
function recoveryMode(mode) {
  $("#login-form").hidden = mode !== null;
  $("#register-form").hidden = mode !== null;
  $("#forgot-form").hidden = mode !== "forgot";
  $("#reset-form").hidden = mode !== "reset";
  $("#mfa-form").hidden = mode !== "mfa";
  const shown = mode && $(`#${mode}-form input`);
  if (shown) shown.focus();
}

const onForgot = whenSubmitted(async (form) => {
  await api("password/forgot/", { method: "POST", body: { email: form.email.value }, auth: false });
  form.reset();
  recoveryMode(null);
  banner("forgot.sent", "ok");
});

const onReset = whenSubmitted(async (form) => {
  const body = { token: state.resetToken, new_password: form.new_password.value };
  const answer = await api("password/reset/", { method: "POST", body, auth: false });
  state.resetToken = null;
  form.reset();
  recoveryMode(null);
  banner("reset.done", "ok");
  await passwordAccepted(answer);
});

// A reset link lands on `?reset=<token>`: the token is taken out of the address bar and history at once.
function resetLink() {
  const token = new URLSearchParams(location.search).get("reset");
  if (token === null) return false;
  state.resetToken = token;
  history.replaceState(null, "", location.pathname);
  return true;
}

// --- email verification ----------------------------------------------------------------

async function onResendVerification() {
  const panel = $("#verify-panel");
  formError(panel, null);
  $("#verify-status").textContent = "";
  try {
    await api("email/verify/resend/", { method: "POST" });
    announce("#verify-status", "verify.sent");
  } catch (error) {
    formError(panel, error);
  }
}

// A verification link lands on `?verify=<token>`: the token leaves the address bar and history at
// once, is spent (no session needed), and the outcome is said in the banner.
async function verifyLink() {
  const token = new URLSearchParams(location.search).get("verify");
  if (token === null) return;
  history.replaceState(null, "", location.pathname);
  try {
    await api("email/verify/", { method: "POST", body: { token }, auth: false });
    banner("verify.done", "ok");
  } catch (error) {
    banner(error.code === "email_taken" ? "verify.taken" : "verify.invalid", "error");
  }
}

async function onLogout() {
  try {
    await api("logout/", { method: "POST", body: { refresh: sessionStorage.getItem(REFRESH_KEY) } });
  } finally {
    if (location.hash) history.replaceState(null, "", location.pathname); // the next one starts on their first page
    signedOut();
    banner("logged_out", "info");
  }
}

const onChangePassword = whenSubmitted(async (form) => {
  const body = { current_password: form.current_password.value, new_password: form.new_password.value };
  keep(await api("password/change/", { method: "POST", body }));
  form.reset();
  banner("password.changed", "ok");
});

async function onPay(event) {
  const pay = event.currentTarget;
  const panel = $("#pay-panel");
  formError(panel, null);
  pay.disabled = true;
  try {
    const payment = await api("initiate-payment/", { method: "POST", body: {}, headers: { "Idempotency-Key": crypto.randomUUID() } });
    location.assign(payment.payment_url);
  } catch (error) {
    formError(panel, error);
    pay.disabled = false;
  }
}

function postToStorage(upload, file, progress) {
  return new Promise((resolve, reject) => {
    const form = new FormData();
    for (const [name, value] of Object.entries(upload.fields)) form.append(name, value);
    form.append("file", file);
    const request = new XMLHttpRequest();
    request.open("POST", upload.url);
    request.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) progress.value = Math.round((100 * event.loaded) / event.total);
    });
    request.addEventListener("load", () => (request.status < 300 ? resolve() : reject({ key: "upload.refused", vars: { status: request.status } })));
    request.addEventListener("error", () => reject({ key: "upload.network" }));
    request.send(form);
  });
}

async function onUpload(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const panel = $("#upload-panel");
  const progress = $("#upload-progress");
  formError(panel, null);
  const file = form.file.files[0];
  if (!file) {
    formError(panel, { key: "upload.choose" });
    return;
  }
  const submit = $("button", form);
  submit.disabled = true;
  progress.value = 0;
  progress.hidden = false;
  announce("#upload-status", "upload.sending", { name: file.name });
  try {
    const { upload } = await api("upload/", { method: "POST", body: { filename: file.name, size: file.size, content_type: file.type } });
    refreshUsage().catch(() => {});
    await postToStorage(upload, file, progress);
    progress.value = 100;
    announce("#upload-status", "upload.counting", { name: file.name });
    form.reset();
    await loadFiles();
  } catch (error) {
    $("#upload-status").textContent = "";
    progress.hidden = true;
    formError(panel, error);
  } finally {
    submit.disabled = false;
  }
}

// --- leaving: the usage, the data export, the account's deletion ---------------------------

function showUsage() {
  const usage = state.usage;
  if (!usage) return;
  const vars = { files: format.number(usage.files), max_files: format.number(usage.max_files), bytes: format.bytes(usage.bytes), max_bytes: format.bytes(usage.max_bytes) };
  $("#usage").textContent = t("leaving.usage", vars);
}

async function refreshUsage() {
  state.usage = (await api("me/")).usage;
  showUsage();
}

async function onDownloadData() {
  const panel = $("#leaving-panel");
  formError(panel, null);
  try {
    const response = await api("me/export/", { raw: true });
    const name = /filename="([^"]+)"/.exec(response.headers.get("Content-Disposition") || "")?.[1] || "my-data.json";
    await save(response, name);
    announce("#leaving-status", "leaving.downloaded", { name });
  } catch (error) {
    formError(panel, error);
  }
}

function deleteConfirmation(open) {
  const form = $("#delete-form");
  form.reset();
  formError(form, null);
  form.hidden = !open;
  $("#delete-open").hidden = open;
  (open ? form.password : $("#delete-open")).focus();
}

async function onDeleteAccount(event) {
  event.preventDefault();
  const form = event.currentTarget;
  formError(form, null);
  try {
    await api("me/", { method: "DELETE", body: { password: form.password.value } });
    deleteConfirmation(false);
    signedOut();
    banner("leaving.deleted", "ok");
  } catch (error) {
    formError(form, error);
    // A wrong password is the field's problem too: its description says so.
    if (!form.password.hasAttribute("aria-describedby")) form.password.setAttribute("aria-describedby", "delete-error");
    form.password.setAttribute("aria-invalid", "true");
    form.password.focus();
  }
}

// --- the second factor -----------------------------------------------------------------

// A staff member's first log-in: the password, then the second factor's enrolment (QR code, key,
// recovery codes, or a passkey) alone on the page, then the console. No staff page is asked for before it.
async function enrolment() {
  for (const id of [...OWN_PANELS, ...CONSOLE_PAGES]) show(id, false);
  show("#mfa-panel", true);
  show("#mfa-first", true);
  renderSecondFactor();
  show("#mfa-state", false); // the step's own sentence says it
  show("#mfa-off-open", false);
  show("#passkeys-panel", passkeys.supported()); // or a passkey instead: the card signs in with it, then the console
  await passkeys.render();
  if ($("#mfa-setup-form").hidden && $("#mfa-codes").hidden) await onSecondFactorStart();
}

// The recovery codes are shown once, to this session only.
function endEnrolment() {
  show("#mfa-first", false);
  show("#mfa-state", true);
  show("#mfa-continue", false);
  show("#mfa-codes", false);
  $("#mfa-code-list").replaceChildren();
}

async function onEnrolmentDone() {
  state.enrolling = false;
  endEnrolment();
  banner(null);
  await go("overview");
}

function renderSecondFactor() {
  const on = state.user.mfa_enabled;
  $("#mfa-state").textContent = t(on ? "mfa.state_on" : "mfa.state_off");
  show("#mfa-start", !on && $("#mfa-setup-form").hidden);
  show("#mfa-off-open", on);
  if (on) show("#mfa-setup-form", false);
  else show("#mfa-disable-form", false);
}

// The server draws the QR code as an SVG document; it is parsed, never inserted as HTML.
function qrImage(markup) {
  const image = document.importNode(new DOMParser().parseFromString(markup, "image/svg+xml").documentElement, true);
  image.setAttribute("role", "img");
  image.setAttribute("aria-label", t("mfa.qr"));
  return image;
}

async function onSecondFactorStart() {
  const panel = $("#mfa-panel");
  formError(panel, null);
  try {
    const setup = await api("mfa/setup/", { method: "POST", body: {} });
    $("#mfa-qr").replaceChildren(qrImage(setup.qr_svg));
    $("#mfa-secret").textContent = setup.secret;
    show("#mfa-codes", false);
    show("#mfa-start", false);
    show("#mfa-setup-form", true);
    $("#mfa-setup-form input").focus();
  } catch (error) {
    formError(panel, error);
  }
}

const onSecondFactorConfirm = whenSubmitted(async (form) => {
  const answer = await api("mfa/confirm/", { method: "POST", body: { code: form.code.value } });
  keep(answer); // this session proved the factor; every other one ended
  form.reset();
  $("#mfa-qr").replaceChildren();
  $("#mfa-secret").textContent = "";
  $("#mfa-code-list").replaceChildren(...answer.recovery_codes.map((code) => el("li", {}, el("code", {}, code))));
  show("#mfa-codes", true);
  banner("mfa.enabled", "ok");
  if (!state.enrolling) {
    await signedIn();
    return;
  }
  state.user.mfa_enabled = true; // the codes stay until the staff member has kept them
  renderSecondFactor();
  show("#mfa-off-open", false);
  show("#mfa-continue", true);
  $("#mfa-continue").focus();
});

const onSecondFactorDisable = whenSubmitted(async (form) => {
  await api("mfa/disable/", { method: "POST", body: { password: form.password.value, code: form.code.value } });
  form.reset();
  show("#mfa-codes", false);
  banner("mfa.disabled", "ok");
  await signedIn();
});

// --- the staff console ------------------------------------------------------------------

// Its pages are addresses (`#users`, `#user/<id>`, …): links, the back button and a reload all work.
const CONSOLE_VIEWS = ["overview", "users", "payments", "files", "activity", "review", "me"];
const isStaff = (user) => user.is_staff || user.is_superuser;

function currentView() {
  const hash = decodeURIComponent(location.hash.slice(1));
  if (hash.startsWith("user/")) return "user";
  return CONSOLE_VIEWS.includes(hash) ? hash : "overview";
}

// A page of the console, as a new entry in the history; the page's heading takes the focus.
async function go(hash) {
  if (location.hash !== `#${hash}`) history.pushState(null, "", `#${hash}`);
  await render({ focus: true });
}

// The filter choices are the values the API accepts, read from its own OpenAPI document.
async function loadChoices() {
  if (state.choices) return state.choices;
  const document = await api("openapi.json", { auth: false });
  const choices = (path, name) => document.paths[path].get.parameters.find((p) => p.name === name).schema.enum;
  state.choices = {
    payments: choices("/api/admin/transactions/", "status"),
    files: choices("/api/admin/files/", "status"),
    activity: [...choices("/api/admin/activity/", "action")].sort(),
  };
  return state.choices;
}

function fillChoices(select, values, prefix) {
  const kept = select.value;
  select.replaceChildren(el("option", { value: "" }, t("filter.any")), ...values.map((value) => el("option", { value }, label(prefix, value))));
  select.value = values.includes(kept) ? kept : "";
}

function syncFilters(view) {
  const form = $("#list-filter");
  for (const node of form.querySelectorAll("[data-for-views]")) node.hidden = !node.dataset.forViews.split(" ").includes(view);
  show("#search-form", view === "users");
  show("#list-filter", LISTS[view].filter !== undefined);
  show("#export-form", view === "payments");
  if (!state.choices) return;
  if (view === "payments" || view === "files") fillChoices(form.status, state.choices[view], "status");
  fillChoices(form.action, state.choices.activity, "act");
  fillChoices($("#export-form").status, state.choices.payments, "status");
}

// Every name is a link to that user's story.
function userLink(id, username) {
  if (!id) return "—";
  if (!username) return shortId(id);
  return el("a", { href: `#user/${encodeURIComponent(id)}`, title: id, class: "name" }, username);
}

// The section on screen, where a failed action is said.
const visibleSection = () => ["#user-detail", "#list-page", "#overview-page"].map((id) => $(id)).find((node) => !node.hidden) || $("main");

function superuserButton(labelKey, action) {
  if (!state.user.is_superuser) return "";
  return button(t(labelKey), async () => {
    const section = visibleSection();
    formError(section, null);
    try {
      await action();
      banner("action.done", "ok");
      await render();
    } catch (error) {
      formError(section, error);
    }
  });
}

const staffButton = (user) =>
  user.is_superuser || user.id === state.user.id
    ? ""
    : superuserButton(user.is_staff ? "action.revoke_staff" : "action.grant_staff", () =>
        api(`admin/users/${encodeURIComponent(user.id)}/staff/`, { method: "POST", body: { is_staff: !user.is_staff } }),
      );
const verifyButton = (payment) =>
  payment.status === "success" || payment.status === "review"
    ? ""
    : superuserButton("action.verify", () => api(`admin/transactions/${encodeURIComponent(payment.transaction_id)}/verify/`, { method: "POST", body: {} }));
const reprocessButton = (file) =>
  file.status === "failed" ? superuserButton("action.reprocess", () => api(`admin/files/${encodeURIComponent(file.id)}/reprocess/`, { method: "POST", body: {} })) : "";
const roleOf = (user) => (user.is_superuser ? t("role.superuser") : user.is_staff ? t("role.staff") : "");

// A payment held for review: a superuser approves it (uploads open) or rejects it, with a note.
function reviewForm(payment) {
  if (!state.user.is_superuser) return el("span", { class: "muted" }, t("review.superuser_only"));
  const id = encodeURIComponent(payment.transaction_id);
  const decide = (verdict, body) => async (form) => {
    await api(`admin/transactions/${id}/${verdict}/`, { method: "POST", body });
    announce("#admin-status", verdict === "approve" ? "review.approved" : "review.rejected", { id: payment.transaction_id });
    await loadList("review");
  };
  const form = el(
    "form",
    { class: "review-form", novalidate: "" },
    el("label", {}, el("span", {}, t("review.note")), el("input", { name: "note", maxlength: "500", autocomplete: "off" })),
    el("button", { type: "submit", value: "approve" }, t("review.approve")),
    el("button", { type: "submit", value: "reject", class: "danger" }, t("review.reject")),
    el("p", { class: "form-error", role: "alert" }),
  );
  form.addEventListener("submit", (event) => {
    const note = form.note.value.trim();
    const verdict = event.submitter?.value === "reject" ? "reject" : "approve";
    return whenSubmitted(decide(verdict, verdict === "reject" && note ? { note } : {}))(event);
  });
  return form;
}

// One page of each list: where it is asked, its filter, its columns and a row's cells.
const LISTS = {
  users: {
    path: "admin/users/",
    columns: ["col.user", "col.email", "col.role", "col.paid", "col.joined", "col.actions"],
    row: (user) => [userLink(user.id, user.username), user.email, roleOf(user), t(user.has_paid ? "yes" : "no"), format.when(user.created_at), staffButton(user)],
  },
  payments: {
    path: "admin/transactions/",
    filter: "status",
    columns: ["col.transaction", "col.user", "col.status", "col.amount", "col.started", "col.actions"],
    row: (payment) => [shortId(payment.transaction_id), userLink(payment.user_id, payment.username), paymentStatus(payment), money(payment), format.when(payment.created_at), verifyButton(payment)],
  },
  files: {
    path: "admin/files/",
    filter: "status",
    columns: ["col.file", "col.user", "col.status", "col.words", "col.uploaded", "col.actions"],
    row: (file) => [file.filename, userLink(file.user_id, file.username), badge(file.status), file.word_count == null ? file.error || "" : format.number(file.word_count), format.when(file.created_at), reprocessButton(file)],
  },
  activity: {
    path: "admin/activity/",
    filter: "action",
    columns: ["col.when", "col.action", "col.user", "col.actor", "col.details"],
    row: (entry) => [format.when(entry.created_at), label("act", entry.action), userLink(entry.user_id, entry.username), userLink(entry.actor_id, entry.actor_username), details(entry.metadata)],
  },
  review: {
    path: "admin/transactions/",
    fixed: { status: "review" },
    columns: ["col.transaction", "col.user", "col.amount", "col.started", "col.reason", "col.decision"],
    row: (payment) => [shortId(payment.transaction_id), userLink(payment.user_id, payment.username), money(payment), format.when(payment.created_at), payment.review_reason || "—", reviewForm(payment)],
  },
};

async function loadStats() {
  const stats = await api("admin/stats/");
  const pairs = [
    ["stat.users", format.number(stats.users)],
    ["stat.paid", format.number(stats.payments.success)],
    ["stat.pending", format.number(stats.payments.initiated)],
    ...(stats.payments.review === undefined ? [] : [["stat.review", format.number(stats.payments.review)]]),
    ["stat.revenue", Object.entries(stats.revenue).map(([currency, amount]) => format.money(amount, currency)).join(", ")],
    ["stat.files_done", format.number(stats.files.completed)],
    ["stat.files_failed", format.number(stats.files.failed)],
    ["stat.words", format.number(stats.words_counted)],
  ];
  $("#stats").replaceChildren(...pairs.map(figure));
}

const figure = ([key, value]) => el("div", {}, el("dt", {}, t(key)), el("dd", {}, value));

// The last 30 days as stacked bars (paid below, failed above), drawn here as SVG; the same
// figures are in the table beside it for screen readers. Today is the last day: its figures lead.
async function loadDaily() {
  const { currency, days } = await api(`admin/stats/daily/?days=${CHART_DAYS}`);
  const today = days.at(-1);
  $("#today").replaceChildren(
    ...[
      ["col.users", format.number(today.users)],
      ["col.payments_success", format.number(today.payments_success)],
      ["col.payments_failed", format.number(today.payments_failed)],
      ["col.revenue", format.money(today.revenue, currency)],
      ["col.files_completed", format.number(today.files_completed)],
      ["stat.words", format.number(today.words)],
    ].map(figure),
  );
  const width = 640;
  const height = 180;
  const bottom = height - 24;
  const step = width / days.length;
  const top = Math.max(1, ...days.map((day) => day.payments_success + day.payments_failed));
  const scale = (n) => (n / top) * (bottom - 16);
  const bars = days.map((day, index) => {
    const x = index * step + 2;
    const success = scale(day.payments_success);
    const failed = scale(day.payments_failed);
    const summary = t("chart.bar", { date: format.day(day.date), success: format.number(day.payments_success), failed: format.number(day.payments_failed) });
    return svg(
      "g",
      { "data-date": day.date },
      svg("title", {}, summary),
      svg("rect", { class: "bar success", x, y: bottom - success, width: step - 4, height: success }),
      svg("rect", { class: "bar failed", x, y: bottom - success - failed, width: step - 4, height: failed }),
    );
  });
  const axis = [
    svg("line", { class: "axis", x1: 0, y1: bottom, x2: width, y2: bottom }),
    svg("text", { class: "axis-label", x: 0, y: height - 6 }, format.day(days[0].date)),
    svg("text", { class: "axis-label", x: width, y: height - 6, "text-anchor": "end" }, format.day(days.at(-1).date)),
    svg("text", { class: "axis-label", x: 0, y: 12 }, format.number(top)),
  ];
  const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": t("chart.label"), class: "chart-svg" }, svg("title", {}, t("chart.label")), ...axis, ...bars);
  $("#chart").replaceChildren(chart);
  $("#daily-rows").replaceChildren(
    ...[...days].reverse().map((day) =>
      el(
        "tr",
        { "data-date": day.date },
        el("th", { scope: "row" }, format.day(day.date)),
        el("td", {}, format.number(day.payments_success)),
        el("td", {}, format.number(day.payments_failed)),
        el("td", {}, format.money(day.revenue, currency)),
        el("td", {}, format.number(day.users)),
        el("td", {}, format.number(day.files_completed)),
      ),
    ),
  );
}

async function loadOverview() {
  const section = $("#overview-page");
  formError(section, null);
  try {
    await Promise.all([loadStats(), loadDaily()]);
  } catch (error) {
    formError(section, error);
  }
}

// One page of a list (`more`: the next page, appended); a new view starts with its filters cleared.
async function loadList(view, more = false) {
  const spec = LISTS[view];
  const section = $("#list-page");
  const filters = $("#list-filter");
  if (state.list.view !== view) {
    filters.reset();
    state.list = { view, cursor: null, ticket: state.list.ticket };
  }
  $("#list-heading").textContent = t(`nav.${view}`);
  $("#list-intro").textContent = t(`intro.${view}`);
  $("#list-table").setAttribute("aria-label", t(`list.${view}`));
  formError(section, null);
  const ticket = ++state.list.ticket; // only the latest request may draw the list
  try {
    const params = new URLSearchParams({ limit: "25", ...spec.fixed });
    const query = $("#search-form").q.value.trim();
    if (view === "users" && query) params.set("q", query);
    const filtered = spec.filter && filters[spec.filter].value;
    if (filtered) params.set(spec.filter, filtered);
    if (more && state.list.cursor) params.set("cursor", state.list.cursor);
    const [page] = await Promise.all([api(`${spec.path}?${params}`), loadChoices()]); // the choices once, beside the first page
    if (ticket !== state.list.ticket) return;
    syncFilters(view);
    $("#admin-head").replaceChildren(el("tr", {}, ...spec.columns.map((key) => el("th", { scope: "col" }, t(key)))));
    const rows = page.items.map((item) => el("tr", {}, ...spec.row(item).map((cell) => el("td", {}, cell))));
    if (more) $("#admin-rows").append(...rows);
    else $("#admin-rows").replaceChildren(...rows);
    state.list.cursor = page.next_cursor;
    show("#admin-more", Boolean(page.next_cursor));
    const empty = !more && !rows.length;
    show("#list-table", !empty);
    show("#list-empty", empty);
    if (empty) $("#list-empty").textContent = t((view === "users" && query) || filtered ? "empty.filtered" : `empty.${view}`);
  } catch (error) {
    if (ticket === state.list.ticket) formError(section, error);
  }
}

// One user's story: the account, their payments, files and activity, and the actions.
async function openUser(userId) {
  const section = $("#user-detail");
  const id = encodeURIComponent(userId);
  formError(section, null);
  try {
    const [{ user }, payments, files, entries] = await Promise.all([
      api(`admin/users/${id}/`),
      api(`admin/transactions/?user_id=${id}&limit=50`),
      api(`admin/files/?user_id=${id}&limit=50`),
      api(`admin/activity/?user_id=${id}&limit=50`),
    ]);
    $("#detail-heading").textContent = t("detail.heading", { name: user.username });
    const facts = [
      ["detail.id", el("code", {}, user.id)],
      ["col.email", user.email],
      ["col.role", roleOf(user) || "—"],
      ["col.paid", t(user.has_paid ? "yes" : "no")],
      ["col.joined", format.when(user.created_at)],
    ];
    $("#detail-account").replaceChildren(...facts.map(figure));
    $("#detail-actions").replaceChildren(staffButton(user));
    $("#detail-payments").replaceChildren(...payments.items.map((payment) => paymentRow(payment, el("td", {}, verifyButton(payment)))));
    $("#detail-files").replaceChildren(
      ...files.items.map((file) =>
        el(
          "tr",
          {},
          el("td", {}, file.filename),
          el("td", {}, badge(file.status)),
          el("td", { class: "num" }, file.word_count == null ? file.error || "" : format.number(file.word_count)),
          el("td", {}, format.when(file.created_at)),
          el("td", {}, reprocessButton(file)),
        ),
      ),
    );
    $("#detail-activity").replaceChildren(...entries.items.map(activityItem));
  } catch (error) {
    $("#detail-heading").textContent = t("detail.missing");
    for (const id of ["#detail-account", "#detail-actions", "#detail-payments", "#detail-files", "#detail-activity"]) $(id).replaceChildren();
    formError(section, error);
  }
}

const isoDay = (date) => date.toISOString().slice(0, 10);

const onExport = whenSubmitted(async (form) => {
  const params = new URLSearchParams({ from: form.from.value, to: form.to.value });
  if (form.status.value) params.set("status", form.status.value);
  const response = await api(`admin/transactions/export/?${params}`, { raw: true, headers: { Accept: "text/csv" } });
  const name = `transactions-${form.from.value}-${form.to.value}.csv`;
  await save(response, name);
  announce("#admin-status", "export.done", { name });
});

// --- start -----------------------------------------------------------------------------

// The gateway's return lands on `?payment=<status>`; any other value (even `constructor`) is "invalid".
function paymentReturn() {
  const outcome = new URLSearchParams(location.search).get("payment");
  if (outcome === null) return;
  const known = Object.hasOwn(RETURN_TONES, outcome) ? outcome : "invalid";
  banner(`return.${known}`, RETURN_TONES[known]);
  history.replaceState(null, "", location.pathname);
}

async function onLanguage(event) {
  setLanguage(event.currentTarget.value);
  translate();
  if (state.banner) banner(state.banner.key, state.banner.tone, state.banner.vars);
  if (state.user) await render().catch(() => {});
}

async function start() {
  const language = $("#language");
  language.value = LANGUAGES.includes(currentLanguage()) ? currentLanguage() : "en";
  language.addEventListener("change", onLanguage);
  translate();
  const today = new Date();
  $("#export-form").to.value = isoDay(today);
  $("#export-form").from.value = isoDay(new Date(today.getTime() - (CHART_DAYS - 1) * 86_400_000));
  $("#login-form").addEventListener("submit", onLogin);
  $("#register-form").addEventListener("submit", onRegister);
  $("#password-form").addEventListener("submit", onChangePassword);
  $("#forgot-open").addEventListener("click", () => recoveryMode("forgot"));
  $("#forgot-form").addEventListener("submit", onForgot);
  $("#reset-form").addEventListener("submit", onReset);
  $("#mfa-form").addEventListener("submit", onSecondFactor);
  $("#mfa-start").addEventListener("click", onSecondFactorStart);
  $("#mfa-setup-form").addEventListener("submit", onSecondFactorConfirm);
  $("#mfa-off-open").addEventListener("click", () => {
    show("#mfa-disable-form", true);
    $("#mfa-disable-form input").focus();
  });
  $("#mfa-disable-form").addEventListener("submit", onSecondFactorDisable);
  passkeys.setUp({ api, keep, signedIn, formError, el, show, banner, user: () => state.user, access: () => state.access });
  for (const back of document.querySelectorAll(".recovery-back")) back.addEventListener("click", () => recoveryMode(null));
  $("#logout").addEventListener("click", onLogout);
  $("#verify-resend").addEventListener("click", onResendVerification);
  $("#pay").addEventListener("click", onPay);
  $("#upload-form").addEventListener("submit", onUpload);
  $("#download-data").addEventListener("click", onDownloadData);
  $("#delete-open").addEventListener("click", () => deleteConfirmation(true));
  $("#delete-cancel").addEventListener("click", () => deleteConfirmation(false));
  $("#delete-form").addEventListener("submit", onDeleteAccount);
  $("#mfa-continue").addEventListener("click", onEnrolmentDone);
  $("#export-form").addEventListener("submit", onExport);
  for (const form of ["#search-form", "#list-filter"]) {
    $(form).addEventListener("submit", (event) => {
      event.preventDefault();
      loadList(currentView());
    });
  }
  $("#admin-more").addEventListener("click", () => loadList(currentView(), true));
  $("#detail-back").addEventListener("click", () => go(state.lastList));
  window.addEventListener("hashchange", () => state.user && !state.enrolling && render({ focus: true }));
  paymentReturn();
  await verifyLink();
  if (resetLink()) {
    signedOut();
    recoveryMode("reset");
    return;
  }
  try {
    if (await renew()) await signedIn();
    else signedOut();
  } catch (error) {
    signedOut();
    $("#banner").textContent = errorText(error);
    $("#banner").className = "banner error";
  }
}

start();
