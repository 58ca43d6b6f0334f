"""A small MCP server for examples/mcp_weather.py, made with the `mcp` SDK (stdio)."""

from mcp.server.mcpserver import MCPServer

server = MCPServer("weather")
READINGS = {"oslo": 4, "lima": 19, "cairo": 31, "tokyo": 12}  # °C


@server.tool()
def temperature(city: str) -> str:
    """Today's temperature in a city, in degrees Celsius."""
    found = READINGS.get(city.strip().lower())
    return f"{found} C" if found is not None else f"no reading for {city}; known: {', '.join(READINGS)}"


@server.tool()
def to_fahrenheit(celsius: float) -> float:
    """Convert degrees Celsius to Fahrenheit."""
    return round(celsius * 9 / 5 + 32, 1)


if __name__ == "__main__":
    server.run()
