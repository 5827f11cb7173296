// The studio page: plain JavaScript on the documented API, no build step, nothing from the network.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { videos: [], models: [], streams: {} };

// --- access token: asked once when the server wants one, kept in this browser ---
function token() { return localStorage.getItem("vs-sr-token") || ""; }
function withToken(url) {
  const t = token();
  return t ? url + (url.includes("?") ? "&" : "?") + "access_token=" + encodeURIComponent(t) : url;
}
async function api(path, options = {}) {
  const headers = Object.assign({}, options.headers || {});
  if (token()) headers.Authorization = "Bearer " + token();
  const response = await fetch(path, Object.assign({}, options, { headers }));
  if (response.status === 401) {
    const given = prompt("This studio needs its access token:");
    if (given) { localStorage.setItem("vs-sr-token", given); return api(path, options); }
  }
  if (!response.ok) throw new Error(await reason(response));
  return response.status === 204 ? null : response.json();
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
      setBar(bar, 1, 1, `uploaded: ${video.name}, ${video.width}x${video.height}, ${video.frames} frames`);
      await loadVideos(video.id);
    } else {
      let detail = `the server answered ${request.status}`;
      try { detail = JSON.parse(request.responseText).detail || detail; } catch (error) { /* not JSON */ }
      setBar(bar, 0, 1, "upload failed");
      show(`The upload did not work: ${detail}`);
    }
  };
  request.onerror = () => { $("upload-button").disabled = false; show("The upload did not reach the server."); };
  request.open("POST", "/api/videos");
  if (token()) request.setRequestHeader("Authorization", "Bearer " + token());
  request.send(form);
});

async function loadVideos(select) {
  state.videos = await api("/api/videos");
  const choice = $("video");
  choice.innerHTML = "";
  for (const video of state.videos) {
    const option = new Option(`${video.name} (${video.width}x${video.height}, ${video.frames} frames)`, video.id);
    option.title = video.name;
    choice.add(option);
  }
  if (select) choice.value = select;
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
    remove.onclick = async () => {
      try { await api(`/api/videos/${video.id}`, { method: "DELETE" }); await loadVideos(); await loadJobs(); }
      catch (error) { show(`Could not delete the video: ${error.message}`); }
    };
    item.append(remove);
    $("videos").append(item);
  }
  updatePreview();
}

async function loadModels() {
  state.models = (await api("/api/models")).filter((m) => m.installed);
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

function modelScale() {
  const scales = state.models.filter((m) => m.name === $("model").value).map((m) => m.scale);
  const [kind, value] = $("size").value.split(":");
  if (kind === "scale" && scales.includes(Number(value))) return Number(value);
  return Math.max(...scales, 4);
}

function jobRequest() {
  const [kind, value] = $("size").value.split(":");
  const request = { video: $("video").value, model: $("model").value, scale: modelScale() };
  if (kind === "height") request.height = Number(value);
  else if (Number(value) !== request.scale) {
    // "2x larger" with a model that only has x4: the network runs x4, the result is resized to 2x
    const video = state.videos.find((v) => v.id === request.video);
    if (video) request.height = video.height * Number(value);
  }
  return request;
}

$("job-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  show("");
  try { await api("/api/jobs", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(jobRequest()) }); }
  catch (error) { show(`The job could not start: ${error.message}`); }
  await loadJobs();
});

// --- jobs, with live progress from each job's event stream ---
async function loadJobs() {
  const jobs = await api("/api/jobs");
  const list = $("jobs");
  const seen = new Set();
  for (const job of jobs.slice().reverse()) {
    seen.add(job.id);
    let item = document.getElementById(`job-${job.id}`);
    if (!item) { item = jobItem(job); list.prepend(item); }
    render(job);
    if ((job.state === "queued" || job.state === "running") && !state.streams[job.id]) follow(job.id);
  }
  for (const item of [...list.children]) if (!seen.has(item.id.slice(4))) item.remove();
}

function jobItem(job) {
  const item = document.createElement("li");
  item.id = `job-${job.id}`;
  const video = state.videos.find((v) => v.id === job.video);
  const size = job.height ? `${job.height}p` : `x${job.scale}`;
  const name = video ? video.name : job.video;
  const what = document.createElement("span");
  what.className = "what";
  what.textContent = `→ ${size} with ${job.model}`;
  item.innerHTML = '<div class="title"><span class="numbers"></span></div><div class="error"></div><div class="actions"></div>';
  item.querySelector(".title").prepend(nameSpan(name), what);
  item.insertBefore(makeBar(`progress of ${name} ${what.textContent}`), item.querySelector(".error"));
  return item;
}

function render(job) {
  const item = document.getElementById(`job-${job.id}`);
  if (!item) return;
  item.className = `state-${job.state}`;
  const words = { queued: "waiting", running: "upscaling", done: "done", failed: "failed", cancelled: "cancelled" }[job.state];
  const rate = job.fps ? `${job.fps.toFixed(1)} fps, ${clock(job.eta_s)} left` : "";
  setBar(item.querySelector(".bar"), job.frames_done, job.frames_total,
    `${words}: ${job.frames_done}/${job.frames_total} frames (${job.frames_total ? Math.floor((100 * job.frames_done) / job.frames_total) : 0}%)`);
  item.querySelector(".numbers").textContent = rate;
  item.querySelector(".error").textContent = job.error ? `What went wrong: ${job.error}` : "";
  const actions = item.querySelector(".actions");
  actions.innerHTML = "";
  if (job.state === "done") {
    const link = document.createElement("a");
    link.href = withToken(`/api/jobs/${job.id}/result`);
    link.textContent = "Download";
    link.className = "download";
    actions.append(link);
  }
  if (job.state === "queued" || job.state === "running") actions.append(button("Cancel", () => api(`/api/jobs/${job.id}/cancel`, { method: "POST" })));
  else actions.append(button("Delete", () => api(`/api/jobs/${job.id}`, { method: "DELETE" })));
}

function button(text, action) {
  const element = document.createElement("button");
  element.className = "secondary";
  element.textContent = text;
  element.onclick = async () => {
    try { await action(); } catch (error) { show(`${text} did not work: ${error.message}`); }
    await loadJobs();
  };
  return element;
}

function follow(jobId) {
  const source = new EventSource(withToken(`/api/jobs/${jobId}/events`));
  state.streams[jobId] = source;
  source.onmessage = (message) => {
    const job = JSON.parse(message.data);
    render(job);
    if (job.state !== "queued" && job.state !== "running") { source.close(); delete state.streams[jobId]; }
  };
  source.onerror = () => { source.close(); delete state.streams[jobId]; setTimeout(loadJobs, 2000); };
}

// --- before/after preview with a frame slider ---
let previewTimer = null;
function updatePreview() {
  const video = state.videos.find((v) => v.id === $("video").value);
  const image = $("preview");
  if (!video || !$("model").value) { image.hidden = true; return; }
  const slider = $("frame");
  slider.max = String(Math.max(0, video.frames - 1));
  if (Number(slider.value) > video.frames - 1) slider.value = "0";
  $("frame-number").textContent = slider.value;
  clearTimeout(previewTimer);
  previewTimer = setTimeout(() => {
    const [kind, value] = $("size").value.split(":");
    let url = `/api/videos/${video.id}/preview?frame=${slider.value}&model=${encodeURIComponent($("model").value)}&scale=${modelScale()}`;
    if (kind === "height") url += `&height=${value}`;
    image.onerror = () => show("The preview could not be made for this frame and model.");
    image.onload = () => show("");
    image.src = withToken(url);
    image.hidden = false;
  }, 250);
}
for (const id of ["frame", "video", "model", "size"]) $(id).addEventListener("input", updatePreview);

(async () => {
  try {
    await loadModels();
    await loadVideos();
    await loadJobs();
  } catch (error) {
    show(`The studio could not load: ${error.message}`);
  }
})();
