"""croissant.json: the run as a Croissant 1.0 dataset, with the Responsible-AI fields.

Croissant (MLCommons) is the JSON-LD description that Hugging Face, Kaggle and
OpenML read. The document names the run's files (``distribution``: FileSets by
glob, relative to the document, so the folder can move), describes the records a
reader gets from them (``recordSet``: the kept samples from the shard Parquet,
every input row from the ledger, one field per column), and answers the RAI
extension's questions from what the run did: how the data was collected, what
is missing and why, each filter with its options and counts, the machine
annotations (language, CLIP score) and their models, what the data may contain.
"""

from __future__ import annotations

import hashlib
from typing import Any

import pyarrow as pa

from paircurate.transforms.output.card import UNSTATED, CardFacts, summary_text

CONFORMS_TO = "http://mlcommons.org/croissant/1.0"
CONTEXT = {
    "@language": "en",
    "@vocab": "https://schema.org/",
    "citeAs": "cr:citeAs",
    "column": "cr:column",
    "conformsTo": "dct:conformsTo",
    "cr": "http://mlcommons.org/croissant/",
    "rai": "http://mlcommons.org/croissant/RAI/",
    "data": {"@id": "cr:data", "@type": "@json"},
    "dataType": {"@id": "cr:dataType", "@type": "@vocab"},
    "dct": "http://purl.org/dc/terms/",
    "equivalentProperty": "cr:equivalentProperty",
    "examples": {"@id": "cr:examples", "@type": "@json"},
    "extract": "cr:extract",
    "field": "cr:field",
    "fileProperty": "cr:fileProperty",
    "fileObject": "cr:fileObject",
    "fileSet": "cr:fileSet",
    "format": "cr:format",
    "includes": "cr:includes",
    "isLiveDataset": "cr:isLiveDataset",
    "jsonPath": "cr:jsonPath",
    "key": "cr:key",
    "md5": "cr:md5",
    "parentField": "cr:parentField",
    "path": "cr:path",
    "recordSet": "cr:recordSet",
    "references": "cr:references",
    "regex": "cr:regex",
    "repeated": "cr:repeated",
    "replace": "cr:replace",
    "samplingRate": "cr:samplingRate",
    "sc": "https://schema.org/",
    "separator": "cr:separator",
    "source": "cr:source",
    "subField": "cr:subField",
    "transform": "cr:transform",
}
PARQUET = "application/x-parquet"
DATA_TYPES = (
    (pa.types.is_string, "sc:Text"),
    (pa.types.is_boolean, "sc:Boolean"),
    (pa.types.is_integer, "sc:Integer"),
    (pa.types.is_floating, "sc:Float"),
)
SHARD_SETS = (
    ("shard-tars", "shards/*.tar", "application/x-tar"),
    ("shard-parquet", "shards/*.parquet", PARQUET),
    ("dali-indexes", "shards/*.idx", "text/plain"),
)
METADATA_SETS = (("metadata-parts", "metadata/*.parquet", PARQUET),)
LEDGER_SET = ("ledger-parts", "ledger/*.parquet", PARQUET)


def data_type(dtype: pa.DataType) -> str:
    for test, name in DATA_TYPES:
        if test(dtype):
            return name
    return "sc:Text"


def file_object(name: str, path: str, data: bytes, encoding: str, text: str) -> dict[str, Any]:
    """A file the card names by its bytes (``sha256``), such as the wids index."""
    return {
        "@type": "cr:FileObject",
        "@id": name,
        "name": name,
        "description": text,
        "contentUrl": path,
        "encodingFormat": encoding,
        "sha256": hashlib.sha256(data).hexdigest(),
    }


def distribution(facts: CardFacts, objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    described = dict(facts.files)
    sets = [
        {
            "@type": "cr:FileSet",
            "@id": name,
            "name": name,
            "description": described.get(glob, ""),
            "encodingFormat": encoding,
            "includes": glob,
        }
        for name, glob, encoding in file_sets(facts)
    ]
    return [*sets, *objects]


def samples_set(facts: CardFacts) -> str:
    """The set of files the kept pairs' records are read from."""
    return METADATA_SETS[0][0] if facts.text_only else "shard-parquet"


def file_sets(facts: CardFacts) -> tuple[tuple[str, str, str], ...]:
    """(id, glob, encoding) of the run's sets of files: the samples' first, the ledger last."""
    return (*(METADATA_SETS if facts.text_only else SHARD_SETS), LEDGER_SET)


def record_set(name: str, files: str, text: str, facts: CardFacts) -> dict[str, Any]:
    fields = [
        {
            "@type": "cr:Field",
            "@id": f"{name}/{column}",
            "name": column,
            "description": about,
            "dataType": data_type(dtype),
            "source": {"fileSet": {"@id": files}, "extract": {"column": column}},
        }
        for column, dtype, about in facts.columns
    ]
    return {
        "@type": "cr:RecordSet",
        "@id": name,
        "name": name,
        "description": text,
        "key": {"@id": f"{name}/uid"},
        "field": fields,
    }


def preprocessing(facts: CardFacts) -> list[str]:
    """One sentence per stage: its options and the rows each of its reasons removed."""
    found = []
    for item in facts.filters:
        options = "; ".join(f"{flag} {value}" for flag, value in item.options) or "none"
        removed = ", ".join(f"{code}: {count:,}" for code, count, _ in item.reasons) or "none"
        found.append(f"{item.title}. Options: {options}. Rows removed by reason: {removed}.")
    for removal in facts.removals:
        found.append(removal_text(removal))
    return found


def removal_text(removal: dict[str, Any]) -> str:
    lists = ", ".join(removal.get("lists") or ()) or removal.get("diff") or "none"
    return (
        f"Version {removal.get('version')}: `paircurate remove` took out "
        f"{removal.get('samples_removed', 0):,} samples ({removal.get('rows_changed', 0):,} "
        f"ledger rows) matching {lists}; removed.parquet lists them."
    )


def collection(facts: CardFacts) -> str:
    honoured = [entry["name"] for entry in facts.opt_outs if entry.get("honoured")]
    removed = sum(int(entry.get("rows_removed", 0)) for entry in facts.opt_outs)
    return (
        f"{facts.rows_in:,} rows of URL and alt-text pairs were read from the sources "
        f"({', '.join(path for path, _ in facts.sources) or 'none'}); each image was downloaded "
        f"once from its URL by {facts.generator}, which honoured these opt-out protocols and "
        f"lists: {', '.join(honoured) or 'none'} ({removed:,} rows removed by them)."
    )


def missing_data(facts: CardFacts) -> str:
    failed = dict(facts.status).get("failed", 0)
    return (
        f"{failed:,} of {facts.rows_in:,} rows failed (unreachable, refused or undecodable "
        "images); the ledger keeps each with its reason and detail."
    )


def annotation_tools(facts: CardFacts) -> list[str]:
    caption = next((f for f in facts.filters if f.title.startswith("Caption")), None)
    backend = dict(caption.options).get("--langid-backend", UNSTATED) if caption else UNSTATED
    tools = [f"caption language: {backend} language identifier"]
    if facts.model:
        weights = facts.model.get("pretrained") or facts.model.get("checkpoint_sha256")
        tools.append(f"CLIP score: open_clip {facts.model.get('model')} ({weights})")
    return tools


def responsible_ai(facts: CardFacts) -> dict[str, Any]:
    languages = ", ".join(f"{code} {count:,}" for code, count in facts.languages[:10])
    return {
        "rai:dataCollection": collection(facts),
        "rai:dataCollectionType": ["Web Scraping"],
        "rai:dataCollectionMissingData": missing_data(facts),
        "rai:dataCollectionRawData": (
            "The source lists as given; the images as downloaded are not kept beyond the "
            "run's raw shards (DIR/fetch/), whose digests are in the ledger."
        ),
        "rai:dataPreprocessingProtocol": preprocessing(facts),
        "rai:machineAnnotationTools": annotation_tools(facts),
        "rai:dataBiases": [
            "Web alt-text over-represents languages, regions and subjects that are common on "
            f"the web; kept pairs by caption language: {languages or 'none'}.",
            "A CLIP-score filter keeps pairs the scoring model already agrees with, which "
            "inherits that model's biases.",
        ],
        "rai:dataLimitations": [
            "Captions are alt-text as found: often short, sometimes wrong or promotional.",
            "Images are re-encoded and resized; URLs may stop serving their images.",
        ],
        "rai:personalSensitiveInformation": [
            "Web images may show people, faces and personal data, and captions may name them; "
            "no filter for personal information was applied beyond the lists in force."
        ],
        "rai:dataUseCases": ["CLIP-style contrastive image-text pretraining and its evaluation."],
        "rai:dataSocialImpact": (
            "Models trained on web pairs can reproduce stereotypes and harmful content present "
            "on the web; review the filters and lists above before use."
        ),
        "rai:dataReleaseMaintenancePlan": (
            f"Version {facts.version}. Takedowns and safety hash lists are applied with "
            "`paircurate remove`, which publishes removed.parquet so that copies can be "
            "cleaned the same way."
        ),
    }


def croissant_document(facts: CardFacts, objects: list[dict[str, Any]] = ()) -> dict[str, Any]:
    """The Croissant JSON-LD of a run; ``objects`` are FileObjects (``file_object``) to list."""
    document = {
        "@context": CONTEXT,
        "@type": "sc:Dataset",
        "conformsTo": CONFORMS_TO,
        "name": facts.name,
        "description": summary_text(facts),
        "license": facts.license,
        "version": f"{facts.version}.0.0",
        "datePublished": facts.date,
        "citeAs": f"{facts.name}, version {facts.version} ({facts.date}), curated with "
        f"{facts.generator}.",
        "keywords": ["image-text pairs", "CLIP", "WebDataset", "web crawl"],
        "inLanguage": [code for code, _ in facts.languages if len(code) == 2],
        "isBasedOn": [
            {"@type": "sc:CreativeWork", "name": path, "license": licence}
            for path, licence in facts.sources
        ],
        "distribution": distribution(facts, list(objects)),
        "recordSet": [
            record_set("samples", samples_set(facts), "the kept pairs, one each", facts),
            record_set("ledger", "ledger-parts", "every input row, with its outcome", facts),
        ],
        **responsible_ai(facts),
    }
    if facts.url:
        document["url"] = facts.url
    if facts.creator:
        document["creator"] = {"@type": "sc:Organization", "name": facts.creator}
    return document
