// The dashboard: plain ES module, no build step, every URL relative (works under a stage prefix).
// Access token in memory only; the refresh token in sessionStorage so a reload keeps the session.

const API = new URL("../api/", location.href);
const REFRESH_KEY = "paidupload.refresh";
const POLL_MS = 1500;
const BUSY = new Set(["pending_upload", "processing"]);
const state = { access: null, user: null, poll: null, admin: { cursor: null } };

const $ = (selector) => document.querySelector(selector);

class ApiError extends Error {
  constructor(status, error) {
    super(error.message || `Request failed (${status}).`);
    this.status = status;
    this.code = error.code;
    this.details = error.details;
  }
}

// --- the API ---------------------------------------------------------------------------

async function send(path, { method = "GET", body, headers = {}, auth = true } = {}) {
  const init = { method, headers: { Accept: "application/json", ...headers } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  if (auth && state.access) init.headers.Authorization = `Bearer ${state.access}`;
  return fetch(new URL(path, API), init);
}

async function api(path, options = {}) {
  let response = await send(path, options);
  if (response.status === 401 && options.auth !== false && (await renew())) {
    response = await send(path, options);
  }
  let data = null;
  if (response.status !== 204) {
    try {
      data = await response.json();
    } catch {
      data = null;
    }
  }
  if (!response.ok) {
    if (response.status === 401 && options.auth !== false) signedOut("Your session ended; please log in again.");
    throw new ApiError(response.status, (data && data.error) || {});
  }
  return data;
}

function keep(tokens) {
  state.access = tokens.access;
  sessionStorage.setItem(REFRESH_KEY, tokens.refresh);
}

async function renew() {
  const refresh = sessionStorage.getItem(REFRESH_KEY);
  if (!refresh) return false;
  const response = await send("refresh/", { method: "POST", body: { refresh }, auth: false });
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

function show(id, visible) {
  $(id).hidden = !visible;
}

function banner(message, tone = "info") {
  const node = $("#banner");
  node.textContent = message;
  node.className = `banner ${tone}`;
  node.hidden = !message;
}

function formError(container, error) {
  const target = container.querySelector(".form-error");
  container.querySelectorAll(".field-error").forEach((node) => node.remove());
  target.textContent = error ? error.message : "";
  if (error && error.details && typeof error.details === "object") {
    for (const [field, problem] of Object.entries(error.details)) {
      const input = container.querySelector(`[name="${CSS.escape(field)}"]`);
      if (input) input.closest("label").append(el("span", { class: "field-error" }, String(problem)));
    }
  }
}

const when = (iso) => (iso ? new Date(iso).toLocaleString() : "");
const bytes = (n) => (n < 1024 ? `${n} B` : n < 1048576 ? `${(n / 1024).toFixed(1)} KB` : `${(n / 1048576).toFixed(1)} MB`);
const shortId = (id) => (id ? el("code", { title: id }, `${id.slice(0, 8)}…`) : "—");
const details = (metadata) =>
  Object.entries(metadata || {})
    .map(([key, value]) => `${key}: ${typeof value === "object" ? JSON.stringify(value) : value}`)
    .join(", ");
const badge = (status) => el("span", { class: `badge ${status}` }, status.replace("_", " "));

// --- screens ---------------------------------------------------------------------------

function signedOut(message) {
  state.access = null;
  state.user = null;
  sessionStorage.removeItem(REFRESH_KEY);
  clearInterval(state.poll);
  state.poll = null;
  for (const id of ["#account", "#pay-panel", "#upload-panel", "#files-panel", "#payments-panel", "#activity-panel", "#admin-panel"]) {
    show(id, false);
  }
  show("#signed-out", true);
  if (message) banner(message, "warn");
}

async function signedIn() {
  const { user } = await api("me/");
  state.user = user;
  $("#whoami").textContent = `${user.username}${user.is_superuser ? " (superuser)" : user.is_staff ? " (staff)" : ""}`;
  show("#signed-out", false);
  show("#account", true);
  show("#pay-panel", !user.has_paid);
  for (const id of ["#upload-panel", "#files-panel"]) show(id, user.has_paid);
  show("#payments-panel", true);
  show("#activity-panel", true);
  show("#admin-panel", user.is_staff || user.is_superuser);
  await Promise.all([loadPayments(), loadActivity(), user.has_paid ? loadFiles() : null, user.is_staff ? loadAdmin() : null]);
}

async function loadFiles() {
  const { items } = await api("files/?limit=50");
  $("#files").replaceChildren(
    ...items.map((file) =>
      el(
        "tr",
        {},
        el("td", {}, file.filename),
        el("td", {}, bytes(file.size)),
        el("td", {}, badge(file.status), file.error ? el("small", { class: "muted" }, ` ${file.error}`) : ""),
        el("td", { class: "num" }, file.word_count ?? ""),
        el("td", {}, when(file.created_at)),
        el("td", {}, file.status === "completed" ? el("button", { type: "button", class: "quiet", onclick: () => download(file.id) }, "Download") : ""),
      ),
    ),
  );
  const busy = items.some((file) => BUSY.has(file.status));
  if (busy && !state.poll) state.poll = setInterval(() => loadFiles().catch(() => {}), POLL_MS);
  if (!busy && state.poll) {
    clearInterval(state.poll);
    state.poll = null;
    $("#upload-status").textContent = "Every file is processed.";
    loadActivity().catch(() => {});
  }
}

async function download(fileId) {
  const file = await api(`files/${encodeURIComponent(fileId)}/`);
  if (file.download_url) location.assign(file.download_url);
}

async function loadPayments() {
  const { items } = await api("transactions/?limit=20");
  $("#payments").replaceChildren(
    ...items.map((payment) =>
      el("tr", {}, el("td", {}, el("code", {}, payment.transaction_id)), el("td", {}, badge(payment.status)), el("td", {}, `${payment.amount} ${payment.currency}`), el("td", {}, when(payment.created_at))),
    ),
  );
}

async function loadActivity() {
  const { items } = await api("activity/?limit=20");
  $("#activity").replaceChildren(...items.map((entry) => el("li", {}, el("time", {}, when(entry.created_at)), " ", entry.action.replaceAll("_", " "))));
}

// --- actions ---------------------------------------------------------------------------

async function onLogin(event) {
  event.preventDefault();
  const form = event.currentTarget;
  formError(form, null);
  try {
    keep(await api("login/", { method: "POST", body: { username: form.username.value, password: form.password.value }, auth: false }));
    form.reset();
    banner("");
    await signedIn();
  } catch (error) {
    formError(form, error);
  }
}

async function onRegister(event) {
  event.preventDefault();
  const form = event.currentTarget;
  formError(form, null);
  const body = { username: form.username.value, email: form.email.value, password: form.password.value };
  try {
    await api("register/", { method: "POST", body, auth: false });
    keep(await api("login/", { method: "POST", body: { username: body.username, password: body.password }, auth: false }));
    form.reset();
    banner("Welcome! Pay once to start uploading.", "ok");
    await signedIn();
  } catch (error) {
    formError(form, error);
  }
}

async function onLogout() {
  try {
    await api("logout/", { method: "POST", body: { refresh: sessionStorage.getItem(REFRESH_KEY) } });
  } finally {
    signedOut();
    banner("You are logged out.", "info");
  }
}

async function onPay(event) {
  const button = event.currentTarget;
  const panel = $("#pay-panel");
  formError(panel, null);
  button.disabled = true;
  try {
    const payment = await api("initiate-payment/", { method: "POST", body: {}, headers: { "Idempotency-Key": crypto.randomUUID() } });
    location.assign(payment.payment_url);
  } catch (error) {
    formError(panel, error);
    button.disabled = false;
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
    request.addEventListener("load", () =>
      request.status < 300 ? resolve() : reject(new Error(`The storage refused the file (HTTP ${request.status}).`)),
    );
    request.addEventListener("error", () => reject(new Error("The upload failed: network error.")));
    request.send(form);
  });
}

async function onUpload(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const panel = $("#upload-panel");
  const progress = $("#upload-progress");
  const status = $("#upload-status");
  formError(panel, null);
  const file = form.file.files[0];
  if (!file) {
    formError(panel, { message: "Choose a .txt or .docx file first." });
    return;
  }
  const button = form.querySelector("button");
  button.disabled = true;
  progress.value = 0;
  progress.hidden = false;
  status.textContent = `Uploading ${file.name}…`;
  try {
    const { upload } = await api("upload/", { method: "POST", body: { filename: file.name, size: file.size, content_type: file.type } });
    await postToStorage(upload, file, progress);
    progress.value = 100;
    status.textContent = `${file.name} uploaded; counting words…`;
    form.reset();
    await loadFiles();
  } catch (error) {
    status.textContent = "";
    progress.hidden = true;
    formError(panel, error);
  } finally {
    button.disabled = false;
  }
}

// --- admin -----------------------------------------------------------------------------

const ADMIN_COLUMNS = {
  users: ["Username", "Email", "Staff", "Paid", "Joined", ""],
  transactions: ["Transaction", "User", "Status", "Amount", "Started", ""],
  files: ["File", "User", "Status", "Words", "Uploaded", ""],
  activity: ["When", "Action", "User", "Actor", "Details"],
};

function superuserButton(label, question, action) {
  if (!state.user.is_superuser) return "";
  return el("button", {
    type: "button",
    class: "quiet",
    onclick: async () => {
      if (!confirm(question)) return;
      try {
        await action();
        await loadAdmin();
      } catch (error) {
        formError($("#admin-panel"), error);
      }
    },
  }, label);
}

const ADMIN_ROWS = {
  users: (user) => [
    user.username,
    user.email,
    user.is_superuser ? "superuser" : user.is_staff ? "staff" : "",
    user.has_paid ? "yes" : "no",
    when(user.created_at),
    user.is_superuser || user.id === state.user.id
      ? ""
      : superuserButton(user.is_staff ? "Revoke staff" : "Grant staff", `${user.is_staff ? "Revoke" : "Grant"} staff for ${user.username}?`, () =>
          api(`admin/users/${user.id}/staff/`, { method: "POST", body: { is_staff: !user.is_staff } }),
        ),
  ],
  transactions: (payment) => [
    shortId(payment.transaction_id),
    shortId(payment.user_id),
    badge(payment.status),
    `${payment.amount} ${payment.currency}`,
    when(payment.created_at),
    payment.status === "success" ? "" : superuserButton("Verify", "Check this payment with the gateway now?", () => api(`admin/transactions/${payment.transaction_id}/verify/`, { method: "POST", body: {} })),
  ],
  files: (file) => [
    file.filename,
    shortId(file.user_id),
    badge(file.status),
    file.word_count ?? (file.error || ""),
    when(file.created_at),
    file.status === "failed" ? superuserButton("Reprocess", `Process ${file.filename} again?`, () => api(`admin/files/${file.id}/reprocess/`, { method: "POST", body: {} })) : "",
  ],
  activity: (entry) => [when(entry.created_at), entry.action.replaceAll("_", " "), shortId(entry.user_id), shortId(entry.actor_id), details(entry.metadata)],
};

async function loadStats() {
  const stats = await api("admin/stats/");
  const pairs = [
    ["Users", stats.users],
    ["Paid", stats.payments.success],
    ["Pending payments", stats.payments.initiated],
    ["Revenue", Object.entries(stats.revenue).map(([currency, amount]) => `${amount} ${currency}`).join(", ")],
    ["Files done", stats.files.completed],
    ["Files failed", stats.files.failed],
    ["Words counted", stats.words_counted],
  ];
  $("#stats").replaceChildren(...pairs.map(([name, value]) => el("div", {}, el("dt", {}, name), el("dd", {}, String(value)))));
}

async function loadAdmin(more = false) {
  const form = $("#admin-filter");
  const view = form.view.value;
  const params = new URLSearchParams({ limit: "25" });
  for (const name of view === "activity" ? ["action", "user_id"] : view === "users" ? [] : ["status", "user_id"]) {
    if (form[name].value.trim()) params.set(name, form[name].value.trim());
  }
  if (more && state.admin.cursor) params.set("cursor", state.admin.cursor);
  formError($("#admin-panel"), null);
  try {
    const [page] = await Promise.all([api(`admin/${view}/?${params}`), more ? null : loadStats()]);
    $("#admin-head").replaceChildren(el("tr", {}, ...ADMIN_COLUMNS[view].map((name) => el("th", {}, name))));
    const rows = page.items.map((item) => el("tr", {}, ...ADMIN_ROWS[view](item).map((cell) => el("td", {}, cell))));
    if (more) $("#admin-rows").append(...rows);
    else $("#admin-rows").replaceChildren(...rows);
    state.admin.cursor = page.next_cursor;
    $("#admin-more").hidden = !page.next_cursor;
  } catch (error) {
    formError($("#admin-panel"), error);
  }
}

// --- start -----------------------------------------------------------------------------

const RETURN_MESSAGES = {
  success: ["Payment received: uploads are open.", "ok"],
  failed: ["The payment failed; nothing was charged. You can try again.", "warn"],
  cancelled: ["The payment was cancelled.", "warn"],
  expired: ["The payment expired; please start again.", "warn"],
  initiated: ["The payment is not confirmed yet; we will check with the gateway shortly.", "info"],
  invalid: ["That payment return could not be verified; nothing changed.", "error"],
};

function paymentReturn() {
  const params = new URLSearchParams(location.search);
  const outcome = params.get("payment");
  if (!outcome) return;
  const [message, tone] = RETURN_MESSAGES[outcome] || RETURN_MESSAGES.invalid;
  banner(message, tone);
  history.replaceState(null, "", location.pathname);
}

async function start() {
  $("#login-form").addEventListener("submit", onLogin);
  $("#register-form").addEventListener("submit", onRegister);
  $("#logout").addEventListener("click", onLogout);
  $("#pay").addEventListener("click", onPay);
  $("#upload-form").addEventListener("submit", onUpload);
  $("#admin-filter").addEventListener("submit", (event) => {
    event.preventDefault();
    loadAdmin();
  });
  $("#admin-more").addEventListener("click", () => loadAdmin(true));
  paymentReturn();
  try {
    if (await renew()) await signedIn();
    else signedOut();
  } catch (error) {
    signedOut();
    banner(error.message, "error");
  }
}

start();
