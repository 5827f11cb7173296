// The studio page: plain JavaScript on the documented API, no build step, nothing from the network.
"use strict";

const $ = (id) => document.getElementById(id);
// videoById: the videos by id (the chosen one is looked up at every change of a choice).
const state = { videos: [], videoById: new Map(), models: [], offline: false, tokenDismissed: false };

// --- access token: asked once when the server wants one, kept in this browser ---
// API calls send it in a header; the preview image and the download link, which a browser fetches by
// itself, get it from a cookie the server takes for reading only (an access_token= in their URLs
// went into every proxy's and browser's history).
function token() { return localStorage.getItem("vs-sr-token") || ""; }
function keepToken(value) {
  if (value) localStorage.setItem("vs-sr-token", value); else localStorage.removeItem("vs-sr-token");
  // Named by the page's port (a host's ports share cookies: two studios would overwrite each other's), under the
  // page's own path (the studio may live under /studio/).
  const name = `vs_sr_token_${location.port || "default"}`;
  const folder = location.pathname.replace(/[^/]*$/, "");
  document.cookie = `${name}=${encodeURIComponent(value)}; path=${folder}; SameSite=Strict`
    + (location.protocol === "https:" ? "; Secure" : "") + (value ? "" : "; max-age=0");
}
// The API's routes, relative to the page, so that a proxy may serve the studio under a path of its own.
function route(path) { return `api/${path}`; }
async function api(path, options = {}) {
  const response = await send(path, options);
  return response.status === 204 ? null : response.json();
}
// A list and how many there are in all (the list may be only the newest: ?limit=).
async function apiList(path) {
  const response = await send(path, {});
  return { items: await response.json(), total: Number(response.headers.get("X-Total-Count")) };
}
async function send(path, options) {
  const headers = Object.assign({}, options.headers || {});
  if (token()) headers.Authorization = "Bearer " + token();
  let response;
  try { response = await fetch(path, Object.assign({}, options, { headers })); }
  catch (error) { throw new Error("the studio server does not answer (stopped, or the network is down)"); }
  if (response.status === 401 && !state.tokenDismissed) {
    const wrong = token() !== "";
    const given = prompt(wrong ? "That access token was not accepted; enter this studio's access token:"
      : "This studio needs its access token:");
    if (given) { keepToken(given); return send(path, options); }
    keepToken("");
    state.tokenDismissed = true;  // asked again when the page is reloaded, not every few seconds
    throw new Error("this studio needs its access token: reload the page to enter it");
  }
  if (!response.ok) throw new Error(await reason(response));
  return response;
}
async function reason(response) {
  try {
    const body = await response.json();
    if (typeof body.detail === "string") return body.detail;
    if (Array.isArray(body.detail)) return body.detail.map((d) => d.msg).join("; ");
  } catch (error) { /* not JSON */ }
  return `the server answered ${response.status} ${response.statusText}`;
}
function show(message) {
  const box = $("message");
  box.textContent = message;
  box.hidden = !message;
}

// --- formatting ---
function plural(count, word) { return `${count} ${word}${count === 1 ? "" : "s"}`; }
// Good news for screen readers (errors go to the alert box): an upload done, a job finished.
function announce(words) { $("status").textContent = words; }
function clock(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  const s = Math.max(0, Math.round(seconds));
  return `${Math.floor(s / 3600)}:${String(Math.floor(s / 60) % 60).padStart(2, "0")}:${String(s % 60).padStart(2, "0")}`;
}
// A bar is a progressbar for assistive technology: its value, its range and its words.
function setBar(bar, done, total, text) {
  bar.querySelector(".fill").style.width = `${total ? Math.min(100, (100 * done) / total) : 0}%`;
  bar.querySelector(".label").textContent = text;
  bar.setAttribute("aria-valuemax", String(Math.max(total, 1)));
  bar.setAttribute("aria-valuenow", String(Math.min(done, Math.max(total, 1))));
  bar.setAttribute("aria-valuetext", text);
}
function makeBar(label) {
  const bar = document.createElement("div");
  bar.className = "bar";
  bar.setAttribute("role", "progressbar");
  bar.setAttribute("aria-label", label);
  bar.setAttribute("aria-valuemin", "0");
  bar.innerHTML = '<div class="fill"></div><span class="label"></span>';
  return bar;
}
// A name that may be longer than its card: cut with an ellipsis by the style sheet, whole on hover.
function nameSpan(text) {
  const span = document.createElement("span");
  span.className = "name";
  span.textContent = text;
  span.title = text;
  return span;
}

// --- upload, with its own progress bar ---
$("upload-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const file = $("file").files[0];
  if (!file) return;
  show("");
  const form = new FormData();
  form.append("file", file);
  const request = new XMLHttpRequest();
  const bar = $("upload-bar");
  bar.hidden = false;
  $("upload-button").disabled = true;
  request.upload.onprogress = (e) => {
    if (e.lengthComputable) setBar(bar, e.loaded, e.total, `uploading ${Math.floor((100 * e.loaded) / e.total)}%`);
  };
  request.onload = async () => {
    $("upload-button").disabled = false;
    if (request.status >= 200 && request.status < 300) {
      const video = JSON.parse(request.responseText);
      // First: "uploaded" then means chosen, so a Start right after it starts this video (it sent no video).
      try { await loadVideos(video.id); } catch (error) { show(`The list of videos could not be read: ${error.message}`); }
      setBar(bar, 1, 1, `uploaded: ${video.name}, ${video.width}x${video.height}, ${plural(video.frames, "frame")}`);
      announce(`${video.name} uploaded`);
    } else {
      let detail = request.status === 413
        ? "the file is larger than the server, or a proxy in front of it, accepts" : `the server answered ${request.status}`;
      try { detail = JSON.parse(request.responseText).detail || detail; } catch (error) { /* not JSON: a proxy's page */ }
      setBar(bar, 0, 1, "upload failed");
      show(`The upload did not work: ${detail}`);
    }
  };
  request.onerror = () => {
    $("upload-button").disabled = false;
    setBar(bar, 0, 1, "upload failed");
    show("The upload did not reach the server.");
  };
  request.open("POST", route("videos"));
  if (token()) request.setRequestHeader("Authorization", "Bearer " + token());
  request.send(form);
});

async function loadVideos(select) {
  const videos = await api(route("videos"));
  if (!select && JSON.stringify(videos) === JSON.stringify(state.videos)) return;  // (another tab may add some)
  state.videos = videos;
  state.videoById = new Map(videos.map((video) => [video.id, video]));
  const choice = $("video");
  const chosen = select || choice.value;
  choice.innerHTML = "";
  for (const video of state.videos) {
    const option = new Option(`${video.name} (${video.width}x${video.height}, ${video.frames} frames)`, video.id);
    option.title = video.name;
    choice.add(option);
  }
  if (chosen && state.videoById.has(chosen)) choice.value = chosen;
  else if (chosen && !select) {
    choice.value = "";  // no silent switch to another video: Start asks for a choice
    show("The chosen video was deleted (in another tab, or by someone else); choose a video.");
  }
  $("videos").innerHTML = "";
  for (const video of state.videos) {
    const item = document.createElement("li");
    const facts = document.createElement("span");
    facts.className = "facts";
    facts.textContent = `${video.width}x${video.height}, ${video.fps} fps, ${video.duration} s`;
    item.append(nameSpan(video.name), facts);
    const remove = document.createElement("button");
    remove.className = "secondary";
    remove.textContent = "Delete";
    remove.setAttribute("aria-label", `Delete ${video.name}`);
    remove.onclick = async () => {
      const jobs = (state.jobs || []).filter((j) => j.video === video.id).length;
      const counted = $("older-jobs").hidden ? (jobs ? plural(jobs, "job") : "") : "jobs";  // (older ones unseen)
      const also = counted ? ` and its ${counted} (results included; a running job is stopped)` : "";
      if (!confirm(`Delete ${video.name}${also}?`)) return;
      try {
        await api(route(`videos/${video.id}`), { method: "DELETE" });
        if ($("video").value === video.id) $("video").value = "";  // (not "deleted in another tab": this one did)
        await loadVideos();
        await loadJobs();
        $("file").focus();
      }
      catch (error) { show(`Could not delete the video: ${error.message}`); }
    };
    item.append(remove);
    $("videos").append(item);
  }
  updatePreview();
}

async function loadModels() {
  state.models = (await api(route("models"))).filter((m) => m.installed);
  const choice = $("model");
  choice.innerHTML = "";
  const names = [...new Set(state.models.map((m) => m.name))];
  for (const name of names) {
    // fidelity (restores what the source holds) or generative (draws a look): the choice that matters most
    const model = state.models.find((m) => m.name === name);
    const option = new Option(model.objective === "unknown" ? name : `${name} (${model.objective})`, name);
    option.title = model.description;
    choice.add(option);
  }
  const preferred = state.models.find((m) => m.default);
  if (preferred) choice.value = preferred.name;
  if (!names.length) show("No model is installed on the server (run `vs-sr models import-ncnn` there).");
}

// The network's scale for the chosen size: the smallest of the model's that reaches it, else its
// largest (the result is then resized to the size: a x2-only model makes 1080p too).
function modelScale() {
  const scales = state.models.filter((m) => m.name === $("model").value).map((m) => m.scale).sort((a, b) => a - b);
  if (!scales.length) return 4;
  const [kind, value] = $("size").value.split(":");
  const video = state.videoById.get($("video").value);
  const needed = kind === "scale" ? Number(value) : video ? Number(value) / video.height : scales[scales.length - 1];
  return scales.find((s) => s >= needed - 0.01) || scales[scales.length - 1];
}

function jobRequest() {
  const [kind, value] = $("size").value.split(":");
  const request = { video: $("video").value, model: $("model").value, scale: modelScale() };
  if (kind === "height") request.height = Number(value);
  else if (Number(value) !== request.scale) {
    // "2x larger" with a model that only has x4: the network runs x4, the result is resized to 2x
    const video = state.videoById.get(request.video);
    if (video) request.height = video.height * Number(value);
  }
  return request;
}

$("job-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  show("");
  const start = $("start-button");
  start.disabled = true;  // one job per click, however fast the clicks come
  try {
    await api(route("jobs"), { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(jobRequest()) });
    await refresh();
  } catch (error) { show(`The job could not start: ${error.message}`); }
  finally {
    start.disabled = false;
    if (document.activeElement === document.body) start.focus();  // (disabling it dropped the focus)
  }
});

// --- jobs, with live progress: one request for all of them each second while any runs ---
// (An event stream per job would hold one of the browser's six connections to the server each:
// with six jobs waiting, nothing else, not even an upload, could reach it.)
const JOBS_SHOWN = 200;  // the newest; a studio kept for months has thousands (each drawn at every refresh)
async function loadJobs() {
  const { items: jobs, total } = await apiList(route(`jobs?limit=${JOBS_SHOWN}`));
  const older = $("older-jobs");
  older.hidden = total <= jobs.length;
  older.textContent = `The newest ${jobs.length} of ${total} jobs are shown; the API lists them all (GET /api/jobs).`;
  const list = $("jobs");
  const seen = new Set();
  const earlier = new Map((state.jobs || []).map((job) => [job.id, job]));
  for (const job of jobs) {  // oldest first from the API, each put on top: the newest on top, as new ones come
    seen.add(job.id);
    let item = document.getElementById(`job-${job.id}`);
    if (!item) { item = jobItem(job); list.prepend(item); }
    const before = earlier.get(job.id);
    render(job);
    if (before && before.state !== job.state && ["done", "failed", "cancelled"].includes(job.state)) {
      announce(`${item.dataset.name}: ${job.state}${job.error ? `: ${job.error}` : ""}`);
    }
  }
  for (const item of [...list.children]) if (!seen.has(item.id.slice(4))) item.remove();
  state.jobs = jobs;
  return jobs.some((job) => job.state === "queued" || job.state === "running");
}

let refreshTimer = null;
let refreshes = 0;
async function refresh() {
  clearTimeout(refreshTimer);
  let active = false;
  try {
    if (!state.models.length) await loadModels();  // (the server was down when the page opened)
    // The videos every few seconds (another tab may upload some): they change seldom.
    if (refreshes++ % 4 === 0) await loadVideos();
    active = await loadJobs();
    if (state.offline) { state.offline = false; show(""); }
  } catch (error) {
    state.offline = !state.tokenDismissed;
    show(state.offline ? "The studio server does not answer; trying again every few seconds (your jobs go on when "
      + "it is back)." : `The studio could not load: ${error.message}`);
  }
  if (!state.tokenDismissed) refreshTimer = setTimeout(refresh, active ? 1000 : 4000);
}

function jobItem(job) {
  const item = document.createElement("li");
  item.id = `job-${job.id}`;
  const what = document.createElement("span");
  what.className = "what";
  item.innerHTML = '<div class="title"><span class="numbers"></span></div><div class="error"></div><div class="actions"></div>';
  item.querySelector(".title").prepend(nameSpan(""), what);
  item.insertBefore(makeBar(""), item.querySelector(".error"));
  return item;
}

// A job's words: its video's name, the size and the model. Each control of the card is named by them.
function jobName(job) {
  const size = job.height ? `${job.height}p` : `x${job.scale}`;
  return { name: job.video_name || "a deleted video", what: `→ ${size} with ${job.model}` };
}
function nameCard(item, job) {
  const { name, what } = jobName(job);
  const whole = `${name} ${what}`;
  if (item.dataset.name === whole) return;
  item.dataset.name = whole;
  const span = item.querySelector(".name");
  span.textContent = name;
  span.title = whole;
  item.querySelector(".what").textContent = what;
  item.querySelector(".what").title = whole;
  item.querySelector(".bar").setAttribute("aria-label", `progress of ${whole}`);
  delete item.querySelector(".actions").dataset.state;  // the buttons' names change with it
}

function render(job) {
  const item = document.getElementById(`job-${job.id}`);
  if (!item) return;
  item.className = `state-${job.state}`;
  nameCard(item, job);
  const words = { queued: "waiting", running: "upscaling", done: "done", failed: "failed", cancelled: "cancelled" }[job.state];
  const rate = job.fps ? `${job.fps.toFixed(1)} fps, ${clock(job.eta_s)} left` : "";
  setBar(item.querySelector(".bar"), job.frames_done, job.frames_total,
    `${words}: ${job.frames_done}/${job.frames_total} frames (${job.frames_total ? Math.floor((100 * job.frames_done) / job.frames_total) : 0}%)`);
  item.querySelector(".numbers").textContent = rate;
  item.querySelector(".error").textContent = job.error ? `What went wrong: ${job.error}` : "";
  const actions = item.querySelector(".actions");
  if (actions.dataset.state === job.state) return;  // the same buttons: kept, with the focus a keyboard put there
  actions.dataset.state = job.state;
  actions.innerHTML = "";
  if (job.state === "done") {
    const link = document.createElement("a");
    link.href = route(`jobs/${job.id}/result`);
    link.textContent = "Download";
    link.className = "download";
    actions.append(link);
  }
  const name = item.dataset.name;
  if (job.state === "queued" || job.state === "running") actions.append(button("Cancel", name, () => api(route(`jobs/${job.id}/cancel`), { method: "POST" })));
  else {
    if (job.state === "failed" || job.state === "cancelled") actions.append(button("Retry", name, () => api(route(`jobs/${job.id}/retry`), { method: "POST" })));
    actions.append(button("Delete", name, () => api(route(`jobs/${job.id}`), { method: "DELETE" })));
  }
  for (const link of actions.querySelectorAll("a")) link.setAttribute("aria-label", `Download ${name}`);
}

// An action on one job: its accessible name says which ("Retry holiday.mp4 → 480p with faithful").
function button(text, name, action) {
  const element = document.createElement("button");
  element.className = "secondary";
  element.textContent = text;
  element.setAttribute("aria-label", `${text} ${name}`);
  element.onclick = async () => {
    element.disabled = true;
    try { await action(); } catch (error) { show(`${text} did not work: ${error.message}`); }
    element.disabled = false;  // (a job whose state changed gets new buttons; one that failed keeps these)
    await refresh();
    if (element.isConnected) element.focus();  // (disabling it dropped the focus to the page's top)
    else $("start-button").focus();
  };
  return element;
}

// --- before/after preview with a frame slider ---
let previewTimer = null;
function updatePreview() {
  const video = state.videoById.get($("video").value);
  const image = $("preview");
  if (!video || !$("model").value) { image.hidden = true; return; }
  const slider = $("frame");
  slider.max = String(Math.max(0, video.frames - 1));
  if (Number(slider.value) > video.frames - 1) slider.value = "0";
  $("frame-number").textContent = slider.value;
  clearTimeout(previewTimer);
  previewTimer = setTimeout(() => {
    const request = jobRequest();  // the preview shows what the job would make: the same scale and size
    let url = route(`videos/${video.id}/preview`) + `?frame=${slider.value}&model=${encodeURIComponent(request.model)}&scale=${request.scale}`;
    if (request.height) url += `&height=${request.height}`;
    const note = $("preview-message");
    image.onerror = () => { note.textContent = "The preview could not be made for this frame and model."; note.hidden = false; };
    image.onload = () => { note.textContent = ""; note.hidden = true; };  // (only its own message: not another error)
    image.src = url;
    image.hidden = false;
  }, 250);
}
for (const id of ["frame", "video", "model", "size"]) $(id).addEventListener("input", updatePreview);

(async () => {
  if (token()) keepToken(token());  // (the cookie lasts a browser session; the token is kept longer)
  await refresh();
})();
