"""examples/documents/: every operation a frontend starts from validates against the committed
schema.graphql, so a schema change that would break a client fails here first."""

from pathlib import Path

import pytest
from graphql import GraphQLSchema, OperationDefinitionNode, build_schema, parse, validate

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = sorted((ROOT / "examples" / "documents").glob("*.graphql"))


@pytest.fixture(scope="module")
def schema() -> GraphQLSchema:
    return build_schema((ROOT / "schema.graphql").read_text())


def operations(path: Path) -> list[OperationDefinitionNode]:
    return [d for d in parse(path.read_text()).definitions if isinstance(d, OperationDefinitionNode)]


def test_the_folder_holds_the_documents():
    # An empty (or moved) folder would otherwise validate nothing and pass.
    names = {path.stem for path in DOCUMENTS}
    assert {"Viewer", "ConnectAccount", "StartConnection", "ValidatePost", "CreatePost", "PublishPost", "JobEvents"} <= names, names


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda path: path.name)
def test_the_document_validates_against_the_schema(path: Path, schema: GraphQLSchema):
    errors = validate(schema, parse(path.read_text()))
    assert errors == [], "\n".join(f"{path.name}: {error.message} {error.locations}" for error in errors)


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda path: path.name)
def test_the_document_is_one_operation_named_as_its_file(path: Path):
    # GraphQL Code Generator names the frontend's types after the operation (ViewerQuery,
    # JobEventsSubscription…); one operation per file, named as the file, keeps them findable.
    assert [op.name.value if op.name else None for op in operations(path)] == [path.stem]
