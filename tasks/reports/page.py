"""One video's report page: the video, the timeline under it, faces, transcript, backends.

The page's own script keeps one time ``t`` (s): the video's playback sets it, a click on the
timeline or a word seeks the video to it, and it moves the timeline's cursors and highlights
the word being said. Everything that comes from the data is HTML-escaped here.
"""

from __future__ import annotations

import html
import json

from bokeh.embed import file_html
from bokeh.resources import INLINE

from affectflow.tasks.exports.cues import cues
from affectflow.tasks.exports.results import VideoResults
from affectflow.tasks.reports.index import NO_ICON
from affectflow.tasks.reports.timeline import timeline, track_label

DEMO_WARNING = (
    "The emotion model is a distilled demonstration model (rcma-distilled-v0), not an emotion recognizer "
    "of known accuracy: see docs/emotions.md before reading anything into these curves."
)

CSS = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 1.2em auto; max-width: 1000px; padding: 0 1em; color: #222; }
h1 { font-size: 1.35em; margin: 0 0 .2em; } h2 { font-size: 1.1em; margin: 1.2em 0 .4em; }
.meta { color: #666; } .warning { background: #fff4d6; border-left: 4px solid #e0a800; padding: .5em .8em; }
video { width: 100%; max-height: 420px; background: #000; } .novideo { color: #a00; }
.faces { display: flex; gap: 1em; flex-wrap: wrap; } .face { text-align: center; font-size: .9em; }
.face img { display: block; border-radius: 4px; margin: 0 auto .2em; }
#transcript { max-height: 260px; overflow-y: auto; border: 1px solid #ddd; padding: .4em .6em; }
.cue { margin: .2em 0; } .speaker { font-weight: 600; margin-right: .4em; }
.w { cursor: pointer; border-radius: 3px; } .w.now { background: #ffe066; }
table { border-collapse: collapse; } td, th { padding: .15em .6em; border-bottom: 1px solid #eee; text-align: left; }
"""

PAGE_JS = """
document.addEventListener("DOMContentLoaded", function () {  // the script sits in <head>: wait for the body
  const video = document.getElementById("video");
  const words = Array.from(document.querySelectorAll(".w"));
  let cursors = [];
  function withDoc(ready) {
    if (window.Bokeh && Bokeh.documents && Bokeh.documents.length) { ready(Bokeh.documents[0]); }
    else { setTimeout(function () { withDoc(ready); }, 30); }
  }
  withDoc(function (doc) {
    cursors = ["cursor-valence", "cursor-arousal", "cursor-speakers"].map(function (n) { return doc.get_model_by_name(n); })
      .filter(function (m) { return m; });
    window.affectflowReady = true;
    show(video ? video.currentTime : 0);
  });
  const box = document.getElementById("transcript");
  function keepInView(word) {  // scroll the transcript box only, never the page
    if (!box) { return; }
    const top = word.offsetTop - box.offsetTop, bottom = top + word.offsetHeight;
    if (top < box.scrollTop || bottom > box.scrollTop + box.clientHeight) { box.scrollTop = top - box.clientHeight / 3; }
  }
  let current = null;
  function show(t) {
    window.affectflowTime = t;
    cursors.forEach(function (c) { c.location = t; });
    const now = words.find(function (w) { return +w.dataset.start <= t && t < +w.dataset.end; }) || null;
    if (now !== current) {
      if (current) { current.classList.remove("now"); }
      if (now) { now.classList.add("now"); keepInView(now); }
      current = now;
    }
  }
  window.affectflowSeek = function (t) {
    if (video && isFinite(video.duration || 0)) { video.currentTime = t; }
    show(t);
  };
  words.forEach(function (w) { w.addEventListener("click", function () { window.affectflowSeek(+w.dataset.start); }); });
  if (video) {
    ["timeupdate", "seeked"].forEach(function (e) { video.addEventListener(e, function () { show(video.currentTime); }); });
    (function tick() { if (!video.paused) { show(video.currentTime); } requestAnimationFrame(tick); })();
  }
});
"""

TEMPLATE = """
{% block contents %}
{{ header }}
{{ embed(roots.timeline) }}
{{ details }}
{% endblock %}
{% block postamble %}{{ no_icon }}<style>{{ css }}</style><script>{{ page_js }}</script>{% endblock %}
"""  # postamble: after Bokeh's own page style, which it would override


def report_page(results: VideoResults, media_url: str | None, thumbnails: dict[int, str]) -> str:
    """The whole page as one HTML string (Bokeh's JavaScript inlined: no network needed)."""
    variables = {
        "css": CSS,
        "no_icon": NO_ICON,
        "page_js": PAGE_JS,
        "header": _header(results, media_url),
        "details": _faces(results, thumbnails) + _transcript(results) + _backends(results),
    }
    title = f"{results.name} · affectflow"
    return file_html(timeline(results), INLINE, title, template=TEMPLATE, template_variables=variables)


def _header(results: VideoResults, media_url: str | None) -> str:
    e = html.escape
    video = results.video
    facts = [
        f"video_id {e(results.video_id)}",
        f"{results.duration_s:.1f} s",
        f"status {e(str(video.get('status')))}",
        f"{results.emotions.track_id.nunique()} face tracks",
        f"{results.turns.speaker.nunique()} voices",
    ]
    model = str(results.emotions.model.dropna().iloc[0]) if results.emotions.model.notna().any() else ""
    made_by = f"{model} {video.get('backends') or ''}"  # the rows' model, and the stage's backend line
    warning = f'<p class="warning">{e(DEMO_WARNING)}</p>' if "rcma-distilled" in made_by else ""
    player = (
        f'<video id="video" controls preload="metadata" src="{e(media_url, quote=True)}"></video>'
        if media_url
        else '<p class="novideo">The source video is not reachable from this report (no local copy or URL).</p>'
    )
    return (
        f'<h1>{e(results.name)}</h1><p class="meta">{" · ".join(facts)} · model {e(model or "-")}</p>{warning}{player}'
    )


def _faces(results: VideoResults, thumbnails: dict[int, str]) -> str:
    if not len(results.tracks):
        return ""
    items = []
    for row in results.tracks.itertuples(index=False):
        image = thumbnails.get(int(row.track_id))
        img = f'<img alt="face {row.track_id}" src="{image}">' if image else ""
        seconds = f"{row.first_t:.1f}–{row.last_t:.1f} s"
        items.append(
            f'<div class="face" data-track="{row.track_id}">{img}{html.escape(track_label(results, int(row.track_id)))}'
            f"<br><small>{seconds}</small></div>"
        )
    return f'<h2>Faces</h2><div class="faces">{"".join(items)}</div>'


def _transcript(results: VideoResults) -> str:
    if not len(results.words):
        return "<h2>Transcript</h2><p>No words.</p>"
    lines = []
    for cue in cues(results.words):
        spans = "".join(
            f'<span class="w" data-start="{w["start"]:.3f}" data-end="{max(w["end"], w["start"] + 0.05):.3f}">'
            f"{html.escape(str(w['word']))}</span> "
            for w in cue.words
        )
        speaker = html.escape(cue.speaker or "?")
        lines.append(f'<div class="cue"><span class="speaker">{speaker}</span>{spans}</div>')
    return f'<h2>Transcript</h2><div id="transcript">{"".join(lines)}</div>'


def _backends(results: VideoResults) -> str:
    raw = results.video.get("backends")
    backends = json.loads(raw) if isinstance(raw, str) and raw else {}
    rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>" for k, v in backends.items())
    return f"<h2>Backends</h2><table>{rows}</table>" if rows else ""
