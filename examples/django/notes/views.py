import os

from django.core.cache import cache
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from notes.models import Note


def index(request: HttpRequest) -> JsonResponse:
    """The notes, and how many times this page was seen (counted in the cache)."""
    try:
        views = cache.incr("views")
    except ValueError:
        cache.set("views", 1, timeout=None)
        views = 1
    notes = [note.text for note in Note.objects.order_by("id")]
    return JsonResponse(
        {"notes": notes, "views": views, "release": os.environ.get("SHIPWAY_RELEASE")}
    )


@csrf_exempt
def add(request: HttpRequest) -> JsonResponse:
    if request.method != "POST":
        return JsonResponse({"error": "POST a note"}, status=405)
    note = Note.objects.create(text=request.body.decode()[:200])
    return JsonResponse({"id": note.id, "text": note.text}, status=201)
