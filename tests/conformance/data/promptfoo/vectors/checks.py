def get_assert(output, context):
    limit = context["config"]["max_words"]
    words = len(output.split())
    return {"pass": words <= limit, "score": min(1.0, limit / max(words, 1)), "reason": f"{words} words"}
