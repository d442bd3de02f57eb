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
const PANELS = ["#account", "#verify-panel", "#pay-panel", "#upload-panel", "#files-panel", "#payments-panel", "#activity-panel", "#password-panel", "#mfa-panel", "#passkeys-panel", "#leaving-panel", "#admin-panel", "#user-detail"];
// Tone of the banner after a return from the gateway (`?payment=`); anything else is "invalid".
const RETURN_TONES = { success: "ok", failed: "warn", cancelled: "warn", expired: "warn", initiated: "info", invalid: "error" };

const state = { access: null, user: null, usage: null, poll: null, banner: null, choices: null, admin: { cursor: null, ticket: 0 }, detail: null, resetToken: null, mfaToken: null };

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
  state.detail = null;
  sessionStorage.removeItem(REFRESH_KEY);
  clearInterval(state.poll);
  state.poll = null;
  for (const id of PANELS) show(id, false);
  show("#mfa-codes", false);
  $("#mfa-code-list").replaceChildren(); // recovery codes are shown once, to this session only
  show("#signed-out", true);
  if (messageKey) banner(messageKey, "warn");
}

async function signedIn() {
  const { user, usage } = await api("me/");
  state.user = user;
  state.usage = usage;
  show("#signed-out", false);
  for (const id of ["#account", "#payments-panel", "#activity-panel", "#password-panel", "#mfa-panel", "#leaving-panel"]) show(id, true);
  show("#pay-panel", !user.has_paid);
  show("#verify-panel", user.email !== null && !user.email_verified);
  for (const id of ["#upload-panel", "#files-panel"]) show(id, user.has_paid);
  show("#admin-panel", user.is_staff || user.is_superuser);
  await render();
}

// Everything that depends on data or language; called after sign-in and on a language switch.
async function render() {
  const user = state.user;
  const role = user.is_superuser ? "role.superuser" : user.is_staff ? "role.staff" : null;
  $("#whoami").textContent = role ? `${user.username} (${t(role)})` : user.username;
  renderSecondFactor();
  showUsage();
  if (user.email) announce("#verify-prompt", "verify.prompt", { email: user.email });
  const staff = user.is_staff || user.is_superuser;
  await Promise.all([
    passkeys.render(),
    loadPayments(),
    loadActivity(),
    user.has_paid ? loadFiles() : null,
    staff ? loadAdmin() : null,
    staff && state.detail ? openUser(state.detail, { focus: false }) : null,
  ]);
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
    el("td", {}, badge(payment.status)),
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

function renderSecondFactor() {
  const on = state.user.mfa_enabled;
  $("#mfa-state").textContent = t(on ? "mfa.state_on" : "mfa.state_off");
  show("#mfa-start", !on);
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
  await signedIn();
});

const onSecondFactorDisable = whenSubmitted(async (form) => {
  await api("mfa/disable/", { method: "POST", body: { password: form.password.value, code: form.code.value } });
  form.reset();
  show("#mfa-codes", false);
  banner("mfa.disabled", "ok");
  await signedIn();
});

// --- staff -----------------------------------------------------------------------------

// The filter choices are the values the API accepts, read from its own OpenAPI document.
async function loadChoices() {
  if (state.choices) return state.choices;
  const document = await api("openapi.json", { auth: false });
  const choices = (path, name) => document.paths[path].get.parameters.find((p) => p.name === name).schema.enum;
  state.choices = {
    transactions: choices("/api/admin/transactions/", "status"),
    files: choices("/api/admin/files/", "status"),
    action: [...choices("/api/admin/activity/", "action")].sort(),
  };
  state.choices.payment = state.choices.transactions;
  return state.choices;
}

function fillChoices(select, values, prefix) {
  const kept = select.value;
  select.replaceChildren(el("option", { value: "" }, t("filter.any")), ...values.map((value) => el("option", { value }, label(prefix, value))));
  select.value = values.includes(kept) ? kept : "";
}

function syncFilters() {
  const form = $("#admin-filter");
  const view = form.view.value;
  for (const node of form.querySelectorAll("[data-for-views]")) node.hidden = !node.dataset.forViews.split(" ").includes(view);
  if (state.choices && state.choices[view]) fillChoices(form.status, state.choices[view], "status");
  if (state.choices) {
    fillChoices(form.action, state.choices.action, "act");
    fillChoices($("#export-form").status, state.choices.payment, "status");
  }
}

function userButton(id, username) {
  if (!id) return "—";
  if (!username) return shortId(id);
  return el("button", { type: "button", class: "link", title: id, onclick: () => openUser(id) }, username);
}

function superuserButton(labelKey, action) {
  if (!state.user.is_superuser) return "";
  return button(t(labelKey), async () => {
    const panel = $("#user-detail").hidden ? $("#admin-panel") : $("#user-detail");
    formError(panel, null);
    try {
      await action();
      banner("action.done", "ok");
      await render();
    } catch (error) {
      formError(panel, error);
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
  payment.status === "success" ? "" : superuserButton("action.verify", () => api(`admin/transactions/${encodeURIComponent(payment.transaction_id)}/verify/`, { method: "POST", body: {} }));
const reprocessButton = (file) =>
  file.status === "failed" ? superuserButton("action.reprocess", () => api(`admin/files/${encodeURIComponent(file.id)}/reprocess/`, { method: "POST", body: {} })) : "";
const roleOf = (user) => (user.is_superuser ? t("role.superuser") : user.is_staff ? t("role.staff") : "");

const ADMIN_COLUMNS = {
  users: ["col.user", "col.email", "col.role", "col.paid", "col.joined", "col.actions"],
  transactions: ["col.transaction", "col.user", "col.status", "col.amount", "col.started", "col.actions"],
  files: ["col.file", "col.user", "col.status", "col.words", "col.uploaded", "col.actions"],
  activity: ["col.when", "col.action", "col.user", "col.actor", "col.details"],
};

const ADMIN_ROWS = {
  users: (user) => [userButton(user.id, user.username), user.email, roleOf(user), t(user.has_paid ? "yes" : "no"), format.when(user.created_at), staffButton(user)],
  transactions: (payment) => [shortId(payment.transaction_id), userButton(payment.user_id, payment.username), badge(payment.status), money(payment), format.when(payment.created_at), verifyButton(payment)],
  files: (file) => [file.filename, userButton(file.user_id, file.username), badge(file.status), file.word_count == null ? file.error || "" : format.number(file.word_count), format.when(file.created_at), reprocessButton(file)],
  activity: (entry) => [format.when(entry.created_at), label("act", entry.action), userButton(entry.user_id, entry.username), userButton(entry.actor_id, entry.actor_username), details(entry.metadata)],
};

async function loadStats() {
  const stats = await api("admin/stats/");
  const pairs = [
    ["stat.users", format.number(stats.users)],
    ["stat.paid", format.number(stats.payments.success)],
    ["stat.pending", format.number(stats.payments.initiated)],
    ["stat.revenue", Object.entries(stats.revenue).map(([currency, amount]) => format.money(amount, currency)).join(", ")],
    ["stat.files_done", format.number(stats.files.completed)],
    ["stat.files_failed", format.number(stats.files.failed)],
    ["stat.words", format.number(stats.words_counted)],
  ];
  $("#stats").replaceChildren(...pairs.map(([key, value]) => el("div", {}, el("dt", {}, t(key)), el("dd", {}, value))));
}

// The last 30 days as stacked bars (paid below, failed above), drawn here as SVG; the same
// figures are in the table beside it for screen readers.
async function loadDaily() {
  const { currency, days } = await api(`admin/stats/daily/?days=${CHART_DAYS}`);
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

async function loadAdmin(more = false) {
  const form = $("#admin-filter");
  const panel = $("#admin-panel");
  await loadChoices();
  syncFilters();
  const view = form.view.value;
  const params = new URLSearchParams({ limit: "25" });
  const query = $("#search-form").q.value.trim();
  if (view === "users" && query) params.set("q", query);
  for (const name of view === "activity" ? ["action"] : view === "users" ? [] : ["status"]) {
    if (form[name].value) params.set(name, form[name].value);
  }
  if (more && state.admin.cursor) params.set("cursor", state.admin.cursor);
  formError(panel, null);
  const ticket = ++state.admin.ticket; // only the latest request may draw the list
  try {
    const [page] = await Promise.all([api(`admin/${view}/?${params}`), more ? null : loadStats(), more ? null : loadDaily()]);
    if (ticket !== state.admin.ticket) return;
    $("#admin-head").replaceChildren(el("tr", {}, ...ADMIN_COLUMNS[view].map((key) => el("th", { scope: "col" }, t(key)))));
    const rows = page.items.map((item) => el("tr", {}, ...ADMIN_ROWS[view](item).map((cell) => el("td", {}, cell))));
    if (more) $("#admin-rows").append(...rows);
    else $("#admin-rows").replaceChildren(...rows);
    state.admin.cursor = page.next_cursor;
    $("#admin-more").hidden = !page.next_cursor;
    if (!more && !rows.length) announce("#admin-status", "admin.none");
    else $("#admin-status").textContent = "";
  } catch (error) {
    formError(panel, error);
  }
}

async function onSearch(event) {
  event.preventDefault();
  $("#admin-filter").view.value = "users";
  await loadAdmin();
}

// One user's story: the account, their payments, files and activity, and the actions.
async function openUser(userId, { focus = true } = {}) {
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
    state.detail = user.id;
    $("#detail-heading").textContent = t("detail.heading", { name: user.username });
    const facts = [
      ["detail.id", el("code", {}, user.id)],
      ["col.email", user.email],
      ["col.role", roleOf(user) || "—"],
      ["col.paid", t(user.has_paid ? "yes" : "no")],
      ["col.joined", format.when(user.created_at)],
    ];
    $("#detail-account").replaceChildren(...facts.map(([key, value]) => el("div", {}, el("dt", {}, t(key)), el("dd", {}, value))));
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
    section.hidden = false;
    if (focus) {
      $("#detail-heading").focus();
      announce("#admin-status", "detail.shown", { name: user.username });
    }
  } catch (error) {
    formError($("#admin-panel"), error);
  }
}

function closeUser() {
  state.detail = null;
  show("#user-detail", false);
  $("#search-form").q.focus();
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
  syncFilters();
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
  $("#search-form").addEventListener("submit", onSearch);
  $("#export-form").addEventListener("submit", onExport);
  $("#admin-filter").addEventListener("submit", (event) => {
    event.preventDefault();
    loadAdmin();
  });
  $("#admin-filter").view.addEventListener("change", syncFilters);
  $("#admin-more").addEventListener("click", () => loadAdmin(true));
  $("#detail-back").addEventListener("click", closeUser);
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
