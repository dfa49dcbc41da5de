// shipway's dashboard: the little that needs a script. Every page reads without it.
"use strict";

document.addEventListener("change", (event) => {
  const field = event.target;
  if (field.matches && field.matches("select[data-autosubmit]")) field.form.requestSubmit();
});

// A log that goes on: <pre class="log" data-stream="URL"> gets each line as the server sends
// it, follows to the end while the reader is at the end, and offers a jump to the first error.
function followLog(log) {
  const status = document.getElementById(log.dataset.status || "");
  const jump = document.getElementById(log.dataset.jump || "");
  let after = Number(log.dataset.after || 0);
  const source = new EventSource(log.dataset.stream + (log.dataset.stream.includes("?") ? "&" : "?") + "after=" + after);
  source.addEventListener("line", (event) => {
    const line = JSON.parse(event.data);
    if (line.seq <= after) return;
    after = line.seq;
    const atEnd = log.scrollHeight - log.scrollTop - log.clientHeight < 24;
    const row = document.createElement("span");
    row.className = line.error ? "l err" : "l";
    row.id = log.id + "-" + line.seq;
    row.innerHTML = line.html + "\n";
    log.appendChild(row);
    if (line.error && jump && jump.hidden) {
      jump.href = "#" + row.id;
      jump.hidden = false;
    }
    if (atEnd) log.scrollTop = log.scrollHeight;
  });
  source.addEventListener("end", (event) => {
    source.close();
    const end = JSON.parse(event.data);
    log.dataset.ended = end.status;
    if (status) {
      status.textContent = end.status;
      status.className = "pill s-" + end.status;
    }
  });
  source.addEventListener("error", () => {
    if (log.dataset.ended) source.close();
  });
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("pre.log[data-stream]").forEach(followLog);
  document.querySelectorAll("pre.log").forEach((log) => { log.scrollTop = log.scrollHeight; });
});

// A table that goes on: <tbody data-tail="URL"> gets each new row the server sends, at the top.
function tailRows(body) {
  const status = document.getElementById(body.dataset.status || "");
  const source = new EventSource(body.dataset.tail);
  let added = 0;
  source.addEventListener("entry", (event) => {
    const entry = JSON.parse(event.data);
    if (document.getElementById("entry-" + entry.id)) return;
    body.insertAdjacentHTML("afterbegin", entry.html);
    if (body.firstElementChild) body.firstElementChild.classList.add("new");
    const empty = document.getElementById("no-entries");
    if (empty) empty.hidden = true;
    added += 1;
    if (status) status.textContent = added + (added === 1 ? " new entry" : " new entries") + " since this page loaded.";
  });
  source.addEventListener("error", (event) => {
    if (event.data) source.close();  // the server refused the search: it will not change
  });
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("tbody[data-tail]").forEach(tailRows);
});
