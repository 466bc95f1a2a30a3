def get_transform(output, context):
    return output.strip().upper() + "!" + context["vars"].get("mark", "")


def first_word(output, context):
    return {"first": output.split()[0], "count": len(output.split())}
